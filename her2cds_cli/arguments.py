"""Argument types for the her2-cds command: every value is parsed and bounded by argparse, so
bad input exits 2 with one sentence on stderr, never a traceback."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one sentence (no usage block): `prog: what; help`."""

    def error(self, message: str) -> NoReturn:
        text = message.rstrip(".")
        self.exit(2, f"{self.prog}: {text} (see {self.prog} --help)\n")


def iso_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date in the form YYYY-MM-DD (e.g. 2026-11-22)"
        )
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: {exc}") from exc


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """A whole number from LOW to HIGH (inclusive)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {low} to {high}")
        return value

    return parse


port = bounded_int(1, 65535)


def input_path(text: str) -> Path:
    """An existing, readable file or directory."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise argparse.ArgumentTypeError(f"{text}: permission denied")
    return path


def output_dir(text: str) -> Path:
    """A directory to write into: it may not exist yet, but must not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return path


def notice(text: str) -> None:
    print(f"her2-cds: {text}", file=sys.stderr)
