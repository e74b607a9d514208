"""The one exception type a user ever sees from the CLI."""


class PipelineError(Exception):
    """A problem with the user's input or environment.

    The message is one line that names the file (and line/field where known)
    and says what is wrong; the CLI prints it and exits non-zero.
    """

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
