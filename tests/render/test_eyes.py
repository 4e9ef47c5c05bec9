"""The eye memory: the person's own eyes, lids and brows replayed from their clip (and what it shares
with the mouth patches)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkface.evaluate.metrics import psnr
from talkface.render.eyes import EYES_FILE, EYES_FORMAT, LEGACY_PART_WEIGHTS, PART_WEIGHTS, EyeMemory, _patch_maps, region_indices

from talkface.render.mouth_patches import MouthPatches

from .conftest import landmarks_at


@pytest.fixture(scope="module")
def clip_eyes(clip_face, clip_frames):
    model, fit = clip_face
    return model, fit, EyeMemory.build(model, fit.expression, fit.pose, fit.valid, clip_frames)


def test_memory_holds_every_tracked_frame_upright(clip_eyes, clip_frames):
    model, fit, memory = clip_eyes
    assert len(memory) == fit.valid.sum()
    patch = memory.patch(0)
    assert patch.shape[1] > patch.shape[0]  # wider than tall: both eyes and brows
    points = memory.points[0]
    inside = (points >= 0).all(1) & (points[:, 0] < patch.shape[1]) & (points[:, 1] < patch.shape[0])
    assert inside.all()  # every eye and brow point is in its patch
    # upright: the two eyes' centres (between their corners) lie on one row
    where = {int(landmark): row for row, landmark in enumerate(region_indices())}
    right = points[[where[33], where[133]]].mean(0)
    left = points[[where[362], where[263]]].mean(0)
    assert abs(right[1] - left[1]) < 0.5 and left[0] > right[0]


def test_selection_plays_runs_of_consecutive_frames(clip_eyes):
    model, fit, memory = clip_eyes
    keys = memory.keys_for(model, fit.expression, fit.pose)
    picks = memory.select(keys)
    path = np.array([frame_picks[0][0] for frame_picks in picks])
    # the clip's own motion: the clip itself, played through, is the cheapest choice
    assert (memory.frames[path] == np.flatnonzero(fit.valid)).all()


def test_selection_never_uses_excluded_frames(clip_eyes):
    model, fit, memory = clip_eyes
    keys = memory.keys_for(model, fit.expression, fit.pose)
    picks = memory.select(keys, exclude_frames=np.arange(len(keys)), window=5)
    for t, frame_picks in enumerate(picks):
        main = frame_picks[0][0]
        assert abs(int(memory.frames[main]) - t) > 5
        assert sum(weight for _, weight in frame_picks) == pytest.approx(1.0)
    path = np.array([frame_picks[0][0] for frame_picks in picks])
    runs = 1 + (path[1:] != memory.next_entry[path[:-1]]).sum()
    assert runs < len(path) / 3  # mostly runs, not a new frame every frame


def test_shut_lids_choose_the_clip_frames_with_the_most_shut_eyes(clip_eyes):
    model, fit, memory = clip_eyes
    from talkface.face.topology import eye_openness

    openness = eye_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])
    closed, opened = int(np.argmin(openness)), int(np.argmax(openness))
    keys = memory.keys_for(model, fit.expression[[opened] * 10 + [closed] * 3 + [opened] * 10], fit.pose[[opened] * 23])
    path = np.array([p[0][0] for p in memory.select(keys)])
    chosen = openness[memory.frames[path[10:13]]]
    assert chosen.max() < np.median(openness)  # the blink plays shut eyes
    assert (openness[memory.frames[path[:10]]] > chosen.max()).all()


def test_pasting_the_frames_own_patch_restores_its_eyes(clip_eyes, clip_frames):
    model, fit, memory = clip_eyes
    index = int(np.flatnonzero(fit.valid)[10])
    entry = int(np.flatnonzero(memory.frames == index)[0])
    frame = clip_frames[index]
    landmarks = landmarks_at(model, fit, index)
    grey = np.full_like(frame, 128)
    pasted = memory.paste(grey, landmarks, [(entry, 1.0)])
    changed = np.abs(pasted.astype(int) - grey).sum(2) > 0
    ys, xs = np.nonzero(changed)
    eyes = landmarks[region_indices(), :2]
    # only around the eyes and brows
    assert xs.min() >= eyes[:, 0].min() - 40 and xs.max() <= eyes[:, 0].max() + 40
    assert ys.min() >= eyes[:, 1].min() - 40 and ys.max() <= eyes[:, 1].max() + 40
    # where the mask is whole, the frame's own eyes come back (JPEG and resampling aside);
    # the light match scales the patch to the grey frame's light, so paste onto the real frame
    restored = memory.paste(frame, landmarks, [(entry, 1.0)])
    box = (slice(int(eyes[:, 1].min()), int(eyes[:, 1].max())), slice(int(eyes[:, 0].min()), int(eyes[:, 0].max())))
    assert psnr(restored[box], frame[box]) > 30
    # and as sharp as they were: one bicubic resample into the patch, one out (the patch was
    # cut with a bilinear warp before, which kept 0.77 of the eyes' detail on a real clip)
    detail = lambda image: cv2.Laplacian(cv2.cvtColor(image[box], cv2.COLOR_RGB2GRAY).astype(np.float64), cv2.CV_64F).var()  # noqa: E731
    assert detail(restored) > 0.88 * detail(frame)


def test_patches_of_much_larger_faces_are_shrunk_without_aliasing():
    from talkface.render.eyes import _cut_patch

    rows, columns = np.mgrid[0:400, 0:400]
    frame = np.repeat((128 + 100 * np.sin(columns / 7.0) * np.cos(rows / 9.0))[..., None], 3, 2).astype(np.uint8)
    matrix = np.array([[0.5, 0.0, 10.0], [0.0, 0.5, 20.0]])  # half size: area-shrunk first, then one bicubic warp
    patch = _cut_patch(frame, matrix, (150, 150)).astype(float)
    reference = cv2.warpAffine(cv2.GaussianBlur(frame, (0, 0), 0.8), matrix, (150, 150), flags=cv2.INTER_CUBIC).astype(float)
    assert np.abs(patch - reference)[25:-5, 15:-5].mean() < 2.0  # the same place, no half-pixel shift
    same = np.array([[1.0, 0.0, -3.0], [0.0, 1.0, -4.0]])  # full size: a plain bicubic cut
    np.testing.assert_array_equal(_cut_patch(frame, same, (100, 100)), cv2.warpAffine(frame, same, (100, 100), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE))


def test_untracked_frames_and_faces_outside_the_frame_are_left_alone(clip_eyes, clip_frames):
    model, fit, memory = clip_eyes
    frame = clip_frames[0]
    nan = np.full((478, 3), np.nan)
    assert memory.paste(frame, nan, [(0, 1.0)]) is frame
    far = landmarks_at(model, fit, int(np.flatnonzero(fit.valid)[0])) + [5000, 5000, 0]
    assert np.array_equal(memory.paste(frame, far, [(0, 1.0)]), frame)
    keys = memory.keys_for(model, fit.expression[:4], fit.pose[:4])
    keys[1] = np.nan
    assert len(memory.select(keys)) == 4  # a frame with no face takes any patch, the others still chosen
    assert memory.select(keys[:0]) == []  # an empty motion


def test_save_load_round_trip_and_damage(clip_eyes, tmp_path):
    model, fit, memory = clip_eyes
    memory.save(tmp_path / EYES_FILE)
    loaded = EyeMemory.from_profile(tmp_path)
    assert np.array_equal(loaded.keys, memory.keys) and np.array_equal(loaded.patch(3), memory.patch(3))
    assert EyeMemory.from_profile(tmp_path / "nowhere") is None  # a profile from before the eye memory
    (tmp_path / EYES_FILE).write_bytes((tmp_path / EYES_FILE).read_bytes()[:200])  # truncated
    assert EyeMemory.from_profile(tmp_path) is None  # damaged: the eyes come from the texture, with a note
    from talkface.storage import save_npz

    save_npz(tmp_path / EYES_FILE, format=np.array(1), keys=memory.keys)  # an older format
    assert EyeMemory.from_profile(tmp_path) is None
    save_npz(tmp_path / EYES_FILE, format=np.array(EYES_FORMAT), keys=memory.keys)  # arrays missing
    assert EyeMemory.from_profile(tmp_path) is None
    (tmp_path / EYES_FILE).write_text("not an npz")  # the wrong kind of file
    assert EyeMemory.from_profile(tmp_path) is None


def test_memories_saved_with_other_head_angle_weights_load_reweighted(clip_eyes, tmp_path):
    # a profile made before the head angle weighed PART_WEIGHTS[-1] holds keys weighted by
    # LEGACY_PART_WEIGHTS and no weights of its own: its head angle columns are rescaled on load
    from talkface.storage import load_npz, save_npz

    model, fit, memory = clip_eyes
    memory.save(tmp_path / EYES_FILE)
    arrays = dict(load_npz(tmp_path / EYES_FILE))
    assert np.allclose(arrays["weights"], PART_WEIGHTS)
    old = arrays.pop("weights")
    legacy = memory.keys.copy()
    legacy[:, -2:] *= LEGACY_PART_WEIGHTS[-1] / PART_WEIGHTS[-1]
    save_npz(tmp_path / EYES_FILE, **{**arrays, "keys": legacy})
    loaded = EyeMemory.from_profile(tmp_path)
    assert np.allclose(loaded.keys, memory.keys, atol=1e-5)
    assert not np.allclose(legacy, memory.keys)  # the old keys did differ: the test can fail
    query = memory.keys_for(model, fit.expression[:40], fit.pose[:40])
    assert loaded.select(query) == memory.select(query)
    for weights in (old * [2.0, 1.0, 1.0], old[:2], old * np.nan, old * [1.0, 1.0, 0.0], np.array(["a", "b", "c"])):  # other parts, too few, NaN, zero, text
        save_npz(tmp_path / EYES_FILE, **{**arrays, "weights": weights})
        assert EyeMemory.from_profile(tmp_path) is None  # a note, and the eyes from the texture until a finetune rebuilds them


@pytest.mark.parametrize("region", [EyeMemory, MouthPatches], ids=["eyes", "mouth"])
def test_too_few_frames_is_a_clear_error(region, clip_face, clip_frames):
    from talkface.errors import CacheError

    model, fit = clip_face
    usable = np.zeros(len(fit.valid), bool)
    usable[3] = True
    with pytest.raises(CacheError, match=f"too few tracked frames to keep the person's {region.NAME}"):
        region.build(model, fit.expression, fit.pose, usable, clip_frames)


def test_sampling_maps_are_float32_whatever_the_inputs(clip_eyes):
    # remap takes only float32 maps; under NumPy 2 a float64 scalar times a float32 grid is float64
    # (the paste failed so on a machine with NumPy 2)
    _, _, memory = clip_eyes
    source = memory.points[0].astype(np.float64)
    grid = np.mgrid[0:20, 0:30].astype(np.float64)[::-1]
    map_x, map_y = _patch_maps(source, source + 1.5, grid)
    assert map_x.dtype == map_y.dtype == np.float32
    assert cv2.remap(memory.patch(0), map_x, map_y, cv2.INTER_LINEAR).shape[:2] == (20, 30)
