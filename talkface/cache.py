"""Stage cache for a work folder: a stage is reused when its key (inputs + settings) matches.

`cache.json` maps each stage to the key its files were made with. It is rewritten
(atomically) only after a stage's files are complete, so a killed run never leaves a
stage marked done with half its files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, TypeVar

from talkface.errors import CacheError

from talkface.storage import write_json

T = TypeVar("T")
CHUNK = 1 << 20  # bytes read at a time when hashing files


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex).

    Hashed once per process: later calls for the same file, unchanged (same inode, size and
    modification time), reuse the first result, so a command's stages do not each read it.
    """
    status = os.stat(path)
    identity = (os.path.realpath(path), status.st_ino, status.st_size, status.st_mtime_ns)
    if identity in _DIGESTS:
        return _DIGESTS[identity]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    if len(_DIGESTS) >= 256:
        _DIGESTS.clear()
    _DIGESTS[identity] = digest.hexdigest()
    return _DIGESTS[identity]


_DIGESTS: dict[tuple, str] = {}


def make_key(*parts) -> str:
    """A short stable hash of strings, numbers and dataclass configs."""
    canonical = [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()[:20]


class StageCache:
    """Tracks which stages of a work folder are complete and with which key."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._path = self.folder / "cache.json"
        try:
            self._keys = json.loads(self._path.read_text())
        except (OSError, ValueError):
            self._keys = {}

    def is_done(self, stage: str, key: str, files: list[str]) -> bool:
        """True when `stage` was completed with `key` and all its `files` exist."""
        return self._keys.get(stage) == key and all((self.folder / f).exists() for f in files)

    def load(self, stage: str, key: str, files: list[str], loader: Callable[[], T]) -> T | None:
        """The stage's cached result, or None when it must be (re)computed.

        A cached file that cannot be read (a disk error, a manual edit) counts as not done,
        so the stage is simply redone rather than failing the run.
        """
        if not self.is_done(stage, key, files):
            return None
        try:
            return loader()
        except CacheError:
            return None

    def mark_done(self, stage: str, key: str) -> None:
        self._keys[stage] = key
        write_json(self._path, self._keys)
