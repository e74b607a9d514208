"""One module per command group; each exposes register(subparsers)."""
import json
import sys


def emit(result, as_json: bool, human=None) -> None:
    """Print a command's result: JSON on --json, else the human rendering."""
    if as_json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif human is not None:
        print(human(result))
    else:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
