"""Entry points of the stages and bench scripts: ``--help`` lists every option with its default;
a bad argument or a ``PipelineError`` ends in one line on stderr that names it and the fix, and
exit code 2, never a traceback. A stage runs inside its MLflow run (``tracking.stage_run``)."""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Callable

from .errors import PipelineError


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message}; fix: see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def make_parser(doc: str | None, prog: str | None = None) -> Parser:
    """A parser described by ``doc`` (a module docstring), defaults shown in ``--help``."""
    if prog is None:
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        prog = f"python -m {spec.name}" if spec is not None else f"python {sys.argv[0]}"
    return Parser(prog=prog, description=doc, formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def number(text: str) -> float:
    """An argparse ``type``: a finite number, with a message that says so."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _tracked():
    """The MLflow run of a stage process (``python -m stages.<name>``), once params.yaml is valid;
    nothing for anything else (bench scripts)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None or not spec.name.startswith("stages."):
        return contextlib.nullcontext()
    from .params import load_params
    from .tracking import stage_run

    return stage_run(load_params(), spec.name.removeprefix("stages."), {})


def execute(fn: Callable, parser: Parser | None = None) -> None:
    """Run ``fn(args)`` with the arguments ``parser`` parsed (``fn()`` without a parser: the
    module docstring still answers ``--help``), a stage inside its MLflow run: FINISHED, or
    FAILED on any error. A ``PipelineError`` becomes one line, exit 2."""
    if parser is None:
        make_parser(sys.modules["__main__"].__doc__).parse_args()
        call = fn
    else:
        args = parser.parse_args()
        call = lambda: fn(args)  # noqa: E731
    try:
        with _tracked():
            call()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
