"""Progress bars on stderr for work that takes more than a couple of seconds."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_console = Console(stderr=True)


def enabled() -> bool:
    """Bars show on an interactive stderr unless TALKFACE_QUIET is set."""
    return sys.stderr.isatty() and not os.environ.get("TALKFACE_QUIET")


@contextlib.contextmanager
def bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Show a bar for `total` steps; yields `advance(n)`. Silent when not on a terminal."""
    if not enabled():
        yield lambda n=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def log(message: str) -> None:
    """A status line on stderr (never on stdout, which carries results such as --json)."""
    if not os.environ.get("TALKFACE_QUIET"):
        _console.print(message, highlight=False)
