"""Progress bars on stderr for work that takes more than a couple of seconds.

With TALKFACE_PROGRESS_FILE set (`talkface studio` sets it for the commands it runs), every bar's
steps and every status line are also appended to that file as JSON lines, for another program to
show: {"kind": "bar", "stage": ..., "done": n, "total": n|null, "status": ...} (at most
EVENTS_PER_SECOND a second per bar, and its last step always) and {"kind": "log", "message": ...}.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_console = Console(stderr=True, markup=False)  # messages carry user paths: never parse them as markup
EVENTS_PER_SECOND = 4


def enabled() -> bool:
    """Bars show on an interactive stderr unless TALKFACE_QUIET is set."""
    return sys.stderr.isatty() and not os.environ.get("TALKFACE_QUIET")


def _emit(event: dict) -> None:
    """Append one JSON line to TALKFACE_PROGRESS_FILE, if set; a file that cannot be written
    (a full disk, a removed folder) never stops the work it reports on."""
    target = os.environ.get("TALKFACE_PROGRESS_FILE")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": round(time.time(), 3), **event}) + "\n")
    except OSError:
        pass


class _Events:
    """A bar's steps as events, at most EVENTS_PER_SECOND a second."""

    def __init__(self, stage: str, total: int | None):
        self.stage, self.total, self.done, self.status = stage, total, 0, ""
        self.last = 0.0
        self.pending = False
        self.send(force=True)

    def advance(self, n: int = 1, status: str | None = None) -> None:
        self.done += n
        if status is not None:
            self.status = status
        self.send(force=self.total is not None and self.done >= self.total)

    def send(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1 / EVENTS_PER_SECOND:
            self.pending = True
            return
        self.last, self.pending = now, False
        _emit({"kind": "bar", "stage": self.stage, "done": self.done, "total": self.total, "status": self.status})

    def close(self) -> None:
        if self.pending:
            self.send(force=True)


@contextlib.contextmanager
def bar(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Show a bar for `total` steps; yields `advance(n=1, status=None)`, where `status` is a short
    text shown after the bar (losses, say). Silent when not on a terminal."""
    events = _Events(description, total) if os.environ.get("TALKFACE_PROGRESS_FILE") else None
    try:
        if not enabled():
            if events is None:
                yield lambda n=1, status=None: None
            else:
                yield events.advance
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
                if events is not None:
                    events.advance(n, status)

            yield advance
    finally:
        if events is not None:
            events.close()


def log(message: str) -> None:
    """A status line on stderr (never on stdout, which carries results such as --json)."""
    _emit({"kind": "log", "message": message})
    if not os.environ.get("TALKFACE_QUIET"):
        _console.print(message, highlight=False)
