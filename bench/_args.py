"""Argument helpers shared by the bench scripts: the parser of ``pipeline.core.cli`` with the
module docstring kept as written, and argparse types that reject out-of-range values in one line."""
from __future__ import annotations

import argparse
import json

from pipeline.core.cli import Parser, make_parser, number


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every default (ArgumentDefaultsHelpFormatter) and keeps the docstring's
    layout (its command examples) as written."""


def parser(doc: str | None) -> Parser:
    """``make_parser(doc)`` (one-line errors, defaults in ``--help``), docstring layout kept."""
    p = make_parser(doc)
    p.formatter_class = Formatter
    return p


def int_at_least(minimum: int):
    """An argparse ``type``: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= {minimum}")
        return value
    parse.__name__ = f"int_at_least_{minimum}"
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def positive_number(text: str) -> float:
    """An argparse ``type``: a finite number > 0."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number > 0")
    return value


def probability(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1."""
    value = number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number strictly between 0 and 1")
    return value


def report(result: dict, json_only: bool) -> None:
    """Print ``result`` as aligned ``key: value`` lines (unless ``json_only``), then as one JSON line."""
    if not json_only:
        width = max(map(len, result))
        for k, v in result.items():
            print(f"{k:>{width}}: {v:.4g}" if isinstance(v, float) else f"{k:>{width}}: {v}")
    print(json.dumps(result))
