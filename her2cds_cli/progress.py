"""Progress bars for long command-line runs (`synth`; `population` may use it too): a rich bar
on stderr when it is a terminal, nothing at all otherwise (pipes, CI logs, tests)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def progress(total: int, label: str, stream: TextIO | None = None) -> Iterator[Callable[[], None]]:
    """Yield `advance()`, to call once per item done; the bar shows done/total and time left."""
    out = stream or sys.stderr
    if not (total > 0 and getattr(out, "isatty", lambda: False)()):
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=out, force_terminal=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
