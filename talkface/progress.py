"""Progress bars on stderr for work that takes more than a couple of seconds."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_console = Console(stderr=True, markup=False)  # messages carry user paths: never parse them as markup


def enabled() -> bool:
    """Bars show on an interactive stderr unless TALKFACE_QUIET is set."""
    return sys.stderr.isatty() and not os.environ.get("TALKFACE_QUIET")


@contextlib.contextmanager
def bar(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Show a bar for `total` steps; yields `advance(n=1, status=None)`, where `status` is a short
    text shown after the bar (losses, say). Silent when not on a terminal."""
    if not enabled():
        yield lambda n=1, status=None: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=_console, transient=False) as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str | None = None) -> None:
            progress.update(task, advance=n, **({"status": status} if status is not None else {}))

        yield advance


def log(message: str) -> None:
    """A status line on stderr (never on stdout, which carries results such as --json)."""
    if not os.environ.get("TALKFACE_QUIET"):
        _console.print(message, highlight=False)
