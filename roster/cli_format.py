"""What every CLI verb shares: tables, cells, JSON output and seq arguments."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterable, Sequence, TextIO

from events import codec


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for row in [list(headers)] + cells:
        print(line(row, widths), file=out)


def line(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    return str(value)


def emit_json(obj: Any) -> None:
    sys.stdout.write(codec.dumps(obj, indent=True).decode() + "\n")


def seq_arg(text: str) -> int:
    """An argparse type: a seq is a whole number written in digits (checked against a log later)."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a seq: {text!r}")
    return int(text)
