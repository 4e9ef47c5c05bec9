"""Shared fixtures: the shipped real clip and media derived from it at test time."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from talkface.media import Audio, load_audio, read_frames, write_video

os.environ.setdefault("TALKFACE_QUIET", "1")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Profiles and the 'latest profile' pointer go to a temporary TALKFACE_HOME."""
    monkeypatch.setenv("TALKFACE_HOME", str(tmp_path_factory.getbasetemp() / "talkface-home"))

DATA = Path(__file__).parent / "data"
CLIP = DATA / "obama_3s.mp4"  # 3 s, 25 fps, 450x450, one face, with audio
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def clip() -> Path:
    return CLIP


@pytest.fixture(scope="session")
def clip_frames() -> list[np.ndarray]:
    return list(read_frames(CLIP))


@pytest.fixture(scope="session")
def clip_audio() -> Audio:
    return load_audio(CLIP)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def no_face_video(media_dir, clip_frames) -> Path:
    """A real video with no face: the top-left background corner of the clip, upscaled."""
    import cv2

    path = media_dir / "no_face.mp4"
    frames = (cv2.resize(f[:120, :120], (240, 240)) for f in clip_frames[:30])
    return write_video(path, frames)


@pytest.fixture(scope="session")
def two_faces_video(media_dir, clip_frames) -> Path:
    """The clip beside its own mirror image: two faces of the same size."""
    path = media_dir / "two_faces.mp4"
    frames = (np.concatenate([f, f[:, ::-1]], axis=1) for f in clip_frames[:20])
    return write_video(path, frames)


@pytest.fixture(scope="session")
def gappy_video(media_dir, clip_frames) -> Path:
    """The clip with the face hidden in frames 10-12 (short gap) and 30-49 (long gap)."""
    path = media_dir / "gappy.mp4"
    frames = [f.copy() for f in clip_frames]
    for index in itertools.chain(range(10, 13), range(30, 50)):
        frames[index][:] = frames[index][:60, :60].mean((0, 1)).astype(np.uint8)
    return write_video(path, frames)


def copy_files(source: Path, target: Path) -> Path:
    """Copy the files (not sub-folders) of one folder into a new one."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file():
            (target / item.name).write_bytes(item.read_bytes())
    return target


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/data is not beside this checkout")
    return SHARED
