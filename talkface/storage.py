"""Atomic, code-free storage: every write goes to a temporary file renamed into place.

Arrays live in .npz files read with allow_pickle=False, metadata in JSON, so a file from
someone else can be loaded without running any of its content.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import zipfile
from pathlib import Path

import numpy as np

from talkface.errors import CacheError

MAX_NPZ_BYTES = 8 << 30  # 8 GiB: an array file inflating past this is refused before it is read
MAX_NPZ_RATIO = 200  # inflated / stored size past 1 MiB: real arrays compress far less, a zip bomb ~1000:1
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.partial$")


def partial_path(path: Path) -> Path:
    """A unique temporary name beside `path` for this process; stale ones of dead processes are removed."""
    remove_stale_partials(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete temporaries of `path` left by processes that no longer run; returns what was removed."""
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f".{path.name}.*.partial"):
        match = _PARTIAL.match(candidate.name)
        if match and match["name"] == path.name and not _alive(int(match["pid"])):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: leave its file alone
        return True
    return True


def remove_stale_partials_in(folder: Path) -> list[Path]:
    """Delete every temporary in `folder` whose process is gone (after a SIGKILL)."""
    removed = []
    if Path(folder).is_dir():
        for candidate in Path(folder).glob(".*.partial"):
            match = _PARTIAL.match(candidate.name)
            if match and not _alive(int(match["pid"])):
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_weights(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write shipped weights as one safetensors file (arrays + string metadata), atomically and
    readable by everyone."""
    from safetensors.numpy import save

    atomic_write_bytes(path, save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=metadata))
    Path(path).chmod(0o644)


def read_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A safetensors file's arrays and metadata (no code runs); safetensors' or the OS's error if unreadable."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Save arrays to a compressed .npz, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz (no pickles); CacheError if it is missing, corrupt, or would
    inflate to more than MAX_NPZ_BYTES (or MAX_NPZ_RATIO times its size) in memory."""
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
        stored = max(Path(path).stat().st_size, 1)
        if inflated > MAX_NPZ_BYTES or inflated > MAX_NPZ_RATIO * max(stored, 1 << 20):
            raise CacheError(f"{path} would inflate to {inflated / 2**30:.1f} GiB from {stored / 2**20:.1f} MiB; it is not a file talkface wrote")
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CacheError(f"cannot read {path}: {exc}; delete it and rerun to rebuild") from exc


def read_json_object(path: Path) -> dict:
    """The JSON object (a dict) in `path`. Raises OSError if it cannot be read, ValueError if it
    is not JSON or is JSON of another kind (a number, a list: a damaged record)."""
    value = json.loads(path.read_text())
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} holds a JSON {type(value).__name__}, not an object")
    return value


def write_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())
