"""The mouth patches: the person's own lips and teeth replayed from their clip."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.evaluate.metrics import psnr
from talkface.face import topology
from talkface.render.composite import INNER_LIPS
from talkface.render.mouth_patches import MOUTH_FILE, MOUTH_FORMAT, MouthPatches
from talkface.storage import save_npz

from .conftest import landmarks_at


@pytest.fixture(scope="module")
def clip_mouths(clip_face, clip_frames):
    model, fit = clip_face
    return model, fit, MouthPatches.build(model, fit.expression, fit.pose, fit.valid, clip_frames)


def _openness(model, fit) -> np.ndarray:
    return topology.mouth_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])


def test_every_tracked_frame_is_kept_with_its_lips_inside_an_upright_patch(clip_mouths):
    model, fit, memory = clip_mouths
    assert len(memory) == fit.valid.sum()
    patch, points = memory.patch(0), memory.points[0]
    assert patch.shape[1] > patch.shape[0]
    assert (points >= 0).all() and (points[:, 0] < patch.shape[1]).all() and (points[:, 1] < patch.shape[0]).all()
    where = {int(landmark): row for row, landmark in enumerate(topology.lip_indices())}
    corners = points[[where[topology.MOUTH_LEFT], where[topology.MOUTH_RIGHT]]]
    assert abs(corners[0, 1] - corners[1, 1]) < 0.15 * abs(corners[0, 0] - corners[1, 0])  # level, as the face is


def test_the_warp_puts_the_patch_lips_exactly_on_the_rendered_ones(clip_mouths):
    _, _, memory = clip_mouths
    source = memory.points[5].astype(np.float64)
    target = source * 1.15 + [7.0, 4.0]
    below = target[:, 1] > target[:, 1].mean()
    target[:, 1] += np.where(below, 3.0, -3.0)  # and open it wider
    size = np.ceil(target.max(0) + 15).astype(int)
    grid = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)[::-1]
    map_x, map_y = memory.maps(source, target, grid)
    assert map_x.dtype == map_y.dtype == np.float32
    x, y = np.round(target).astype(int).T
    landed = np.stack([map_x[y, x], map_y[y, x]], 1)
    # read at the pixel nearest each target point: within a pixel of the source lip point
    assert np.abs(landed - (source + (np.round(target) - target) / 1.15)).max() < 1.0
    # far from the lips the remaining shift fades: the similarity alone
    assert abs(map_x[0, 0] - map_x[0, 1] + 1 / 1.15) < 0.05


def test_pasting_a_frames_own_patch_restores_its_mouth_and_nothing_else(clip_mouths, clip_frames):
    model, fit, memory = clip_mouths
    index = int(np.flatnonzero(fit.valid)[20])
    entry = int(np.flatnonzero(memory.frames == index)[0])
    frame, landmarks = clip_frames[index], landmarks_at(model, fit, index)
    grey = np.full_like(frame, 128)
    pasted = memory.paste(grey, landmarks, [(entry, 1.0)])
    ys, xs = np.nonzero(np.abs(pasted.astype(int) - grey).sum(2) > 0)
    lips = landmarks[topology.lip_indices(), :2]
    reach = MouthPatches.reach(float(np.linalg.norm(np.subtract(*topology.eye_centres(landmarks)))))
    assert 0 < reach < 0.5 * np.ptp(lips[:, 0])  # the lips and the skin just around them
    assert xs.min() >= lips[:, 0].min() - reach and xs.max() <= lips[:, 0].max() + reach
    assert ys.min() >= lips[:, 1].min() - reach and ys.max() <= lips[:, 1].max() + reach
    restored = memory.paste(frame, landmarks, [(entry, 1.0)])
    box = (slice(int(lips[:, 1].min()), int(lips[:, 1].max())), slice(int(lips[:, 0].min()), int(lips[:, 0].max())))
    assert psnr(restored[box], frame[box]) > 30


def test_an_open_mouth_chooses_open_clip_frames_and_a_closed_one_closed(clip_mouths):
    model, fit, memory = clip_mouths
    openness = _openness(model, fit)
    usable = np.flatnonzero(fit.valid)
    closed, opened = usable[np.argmin(openness[usable])], usable[np.argmax(openness[usable])]
    order = [closed] * 8 + [opened] * 8
    path = np.array([p[0][0] for p in memory.select(memory.keys_for(model, fit.expression[order], fit.pose[order]))])
    chosen = openness[memory.frames[path]]
    assert chosen[8:].min() > np.percentile(openness[usable], 75)
    assert chosen[:8].max() < np.percentile(openness[usable], 50)


def test_the_light_is_matched_on_the_lips_not_the_opening(clip_mouths):
    model, fit, memory = clip_mouths
    landmarks = landmarks_at(model, fit, int(np.argmax(_openness(model, fit))))
    target = landmarks[topology.lip_indices(), :2] - landmarks[topology.lip_indices(), :2].min(0) + 10
    solid = np.ones((int(target[:, 1].max()) + 10, int(target[:, 0].max()) + 10), np.uint8)
    lips = memory.light_mask(solid, target)
    middle = np.round((landmarks[topology.UPPER_INNER_LIP, :2] + landmarks[topology.LOWER_INNER_LIP, :2]) / 2 - landmarks[topology.lip_indices(), :2].min(0) + 10).astype(int)
    assert lips[middle[1], middle[0]] == 0 and solid.sum() > lips.sum() > 0.5 * solid.sum()
    assert len(INNER_LIPS) == 20


def test_save_load_round_trip_and_damage(clip_mouths, tmp_path):
    _, _, memory = clip_mouths
    memory.save(tmp_path / MOUTH_FILE)
    loaded = MouthPatches.from_profile(tmp_path)
    assert isinstance(loaded, MouthPatches) and np.array_equal(loaded.keys, memory.keys)
    assert np.array_equal(loaded.patch(2), memory.patch(2))
    assert MouthPatches.from_profile(tmp_path / "nowhere") is None  # a profile from before the mouth patches
    (tmp_path / MOUTH_FILE).write_bytes((tmp_path / MOUTH_FILE).read_bytes()[:300])  # truncated
    assert MouthPatches.from_profile(tmp_path) is None
    save_npz(tmp_path / MOUTH_FILE, format=np.array(MOUTH_FORMAT + 1), keys=memory.keys)  # another version
    assert MouthPatches.from_profile(tmp_path) is None
    (tmp_path / MOUTH_FILE).write_text("not an npz")
    assert MouthPatches.from_profile(tmp_path) is None

