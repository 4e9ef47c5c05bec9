"""The `track` stage end to end: outputs, cache/resume, motion files, finetune readiness."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from talkface import track
from talkface.errors import ClipTooShortError, InputError, NoFaceError
from talkface.media import probe
from talkface.motion import Motion, load_motion, save_motion
from talkface.track import require_finetune_clip

from .conftest import copy_files


@pytest.fixture(scope="module")
def tracked(clip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("track")
    return folder, track(clip, folder)


def test_track_writes_results_and_overlay(tracked):
    folder, result = tracked
    summary = result.summary
    assert summary.n_frames == summary.n_tracked == 75
    assert summary.mean_reprojection_px < 1.5 and summary.mean_reprojection_raw_px < 1.5
    assert summary.gaps == [] and not summary.cached
    for name in ("track.npz", "model.npz", "model.json", "fit.npz", "summary.json", "overlay.mp4"):
        assert (folder / name).exists(), name
    assert json.loads((folder / "summary.json").read_text())["n_frames"] == 75
    overlay = probe(folder / "overlay.mp4")
    assert (overlay.width, overlay.height, overlay.has_audio) == (450, 450, True)
    assert abs(overlay.duration - 3.0) < 0.1


def test_rerun_uses_the_cache(clip, tracked):
    folder, first = tracked
    start = time.perf_counter()
    again = track(clip, folder)
    assert again.summary.cached
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(again.fit.pose, first.fit.pose)


def test_a_damaged_cache_file_is_rebuilt(clip, tracked, tmp_path):
    folder, first = tracked
    copy = copy_files(folder, tmp_path / "copy")
    (copy / "fit.npz").write_bytes(b"garbage")
    again = track(clip, copy, overlay=False)
    assert not again.summary.cached
    np.testing.assert_allclose(again.fit.pose, first.fit.pose, atol=1e-5)


def test_changed_settings_redo_only_what_depends_on_them(clip, tracked, tmp_path):
    from talkface.config import ReconstructConfig

    folder, _ = tracked
    copy = copy_files(folder, tmp_path / "settings")
    before = (copy / "track.npz").stat().st_mtime_ns
    result = track(clip, copy, reconstruct_config=ReconstructConfig(n_expression=12), overlay=False)
    assert result.model.n_expression == 12
    assert (copy / "track.npz").stat().st_mtime_ns == before, "tracking was not redone"


def test_motion_file_round_trip(tracked, tmp_path):
    _, result = tracked
    motion = result.motion()
    assert motion.expression.shape == (75, 32) and motion.pose.shape == (75, 6)
    assert motion.landmarks.shape == (75, 478, 3)
    # the model's landmarks sit on the tracked ones
    assert np.abs(motion.landmarks[..., :2] - result.track.landmarks[..., :2]).mean() < 1.5
    path = save_motion(tmp_path / "m.npz", motion)
    back = load_motion(path)
    np.testing.assert_array_equal(back.pose, motion.pose)
    assert back.fps == 25


def test_bad_motion_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_motion(tmp_path / "none.npz")
    bad = Motion(np.zeros((3, 4)), np.zeros((3, 6)), np.zeros((2, 478, 3)), 25)
    path = save_motion(tmp_path / "bad.npz", bad)
    with pytest.raises(InputError, match="do not match"):
        load_motion(path)


def test_short_clip_cannot_be_finetuned(tracked):
    _, result = tracked
    assert not result.summary.finetune_ready
    with pytest.raises(ClipTooShortError, match=r"3\.0 s long; finetuning needs at least 10 s"):
        require_finetune_clip(result.track)


def test_no_face_leaves_no_valid_results(no_face_video, tmp_path):
    with pytest.raises(NoFaceError):
        track(no_face_video, tmp_path / "out")
    assert not (tmp_path / "out" / "model.npz").exists()
    assert not (tmp_path / "out" / "cache.json").exists()
