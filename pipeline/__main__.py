"""CLI router: ``python -m pipeline <command> ...``. Commands live in pipeline/commands/."""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

# MindSpore prints WARNING-level C++ logs (deprecations, compile-cache misses) on every run;
# keep the console for our progress bars unless the user asked for more (GLOG_v=1 or 2).
os.environ.setdefault("GLOG_v", "3")

from pipeline.errors import PipelineError

# Each module defines register(subparsers); order is the order of --help.
COMMAND_MODULES = [
    "pipeline.commands.scoring",   # classify, score-math
    "pipeline.commands.artifacts", # score-squad, parse-log, contest-score
    "pipeline.commands.data",      # data generate|import|prepare|stats|squad
    "pipeline.commands.model",     # train, lora-params, npu-commands, npu-check, convert
    "pipeline.commands.runs",      # infer, evaluate, import, runs
    "pipeline.commands.analysis",  # errors, report
    "pipeline.commands.curve",     # eval-checkpoints
    "pipeline.commands.main_job",  # main (the README's end-to-end job)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="LoRA fine-tuning workbench for MindSpore/MindFormers "
                    "(2024 Ascend AI contest, topic 2).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What manifests record as "command": the command as typed, whether the arguments came
    # from the shell or from a caller of main() (never sys.argv[0]'s machine path).
    words = sys.argv[1:] if argv is None else list(argv)
    args.command_line = "python -m pipeline " + " ".join(shlex.quote(w) for w in words)
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file problem no reader foresaw: still one line, no traceback
        from pipeline.fileio import write_error
        message = write_error(exc, exc.filename) if exc.filename else exc.strerror or exc
        print(f"error: {message}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; is one of the input files far larger than expected?",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main_exit() -> None:
    """Console entry point (`lora-workbench`): main() as the process exit status."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
