"""Where outputs go: checked before any work, written under unique temporary names.

Every video talkface writes goes through `check_destination` (before the heavy work) and
`partial_path` (while writing): the temporary file sits beside the destination with this
process's id and a random token in its name, so two runs never collide, and a later run
removes the ones whose process is gone (a SIGKILL leaves no other trace).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from talkface.errors import InputError
from talkface.storage import partial_path, remove_stale_partials  # noqa: F401  (partial_path: the output stage's name)

MAX_NAME_BYTES = 255  # the longest file name common file systems take


STDOUT = "-"  # as an output path: standard output


def is_stdout(path: str | Path) -> bool:
    """Whether an output path means standard output ("-")."""
    return str(path) == STDOUT


def check_destination(path: str | Path, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Refuse an output path that cannot be written, before any work is done; and remove the
    temporaries of it that killed runs left (they would otherwise stay until the video is written).

    Args:
        path: the file to write.
        inputs: the command's input files; the output may be none of them.

    Raises:
        InputError: naming the problem (a folder, a name too long, an input file, a folder that
            cannot be created or written to) and what to do.
    """
    if is_stdout(path):
        if sys.stdout.isatty():
            raise InputError("--out - writes the video to standard output, which is a terminal here; pipe it into a player (… --out - | ffplay -) or a file")
        return Path(STDOUT)
    path = Path(path)
    if str(path) in ("", "."):
        raise InputError("no output file given; pass --out FILE.mp4")
    if len(path.name.encode()) > MAX_NAME_BYTES - 40:  # room for the temporary name's additions
        raise InputError(f"the output name {path.name[:40]}... is {len(path.name.encode())} bytes long; keep it under {MAX_NAME_BYTES - 40}")
    if path.is_dir():
        raise InputError(f"the output {path} is a folder; give a file name, e.g. {path / 'out.mp4'}")
    for source in inputs:
        if source is not None and Path(source).exists() and path.exists() and os.path.samefile(source, path):
            raise InputError(f"the output {path} is also an input of this command; choose another --out so the input is not overwritten")
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(f"cannot create the folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to {existing}: permission denied; choose another --out")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"cannot overwrite {path}: permission denied; choose another --out")
    remove_stale_partials(path)
    return path
