"""Storage never runs code from files and never leaves partial files; device selection."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.device import resolve_device
from talkface.errors import CacheError, DependencyError
from talkface.storage import atomic_write_bytes, load_npz, save_npz


def test_npz_round_trip_and_no_partials(tmp_path):
    save_npz(tmp_path / "a.npz", x=np.arange(5))
    assert load_npz(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_pickled_objects_are_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CacheError, match="cannot read"):
        load_npz(tmp_path / "evil.npz")


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text is not bytes")  # the write fails half-way through
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_device_resolution():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DependencyError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DependencyError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_file_digest_is_reused_only_while_the_file_is_unchanged(tmp_path):
    import hashlib
    import os

    from talkface.cache import file_digest

    path = tmp_path / "clip.bin"
    path.write_bytes(b"a" * 1000)
    first = file_digest(path)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest() and file_digest(path) == first
    path.write_bytes(b"b" * 1000)  # same size, new bytes
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    assert file_digest(path) == hashlib.sha256(b"b" * 1000).hexdigest()
    replacement = tmp_path / "other.bin"
    replacement.write_bytes(b"c" * 1000)
    os.replace(replacement, path)  # another file under the same name
    assert file_digest(path) == hashlib.sha256(b"c" * 1000).hexdigest()


def test_precision_setting_forces_or_refuses(monkeypatch):
    import pytest

    from talkface.device import use_bfloat16
    from talkface.errors import DependencyError

    assert use_bfloat16("cpu", "fp32") is False and use_bfloat16("cpu", "bf16") is True
    monkeypatch.setenv("TALKFACE_PRECISION", "fp32")
    assert use_bfloat16("cpu") is False and use_bfloat16("cpu", "bf16") is True  # an explicit setting wins
    monkeypatch.setenv("TALKFACE_PRECISION", "fp16")
    with pytest.raises(DependencyError, match="unknown precision 'fp16'"):
        use_bfloat16("cpu")
