"""Closed eyes made from the person's open ones, for blinks their clip does not show."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkface.errors import CacheError
from talkface.face.topology import eye_openness
from talkface.face.tracker import FaceMeshTracker
from talkface.motion.blinks import BlinkModel
from talkface.render.eyelids import LEVELS, SOURCES, close_lids, closed_points, lid_contours, patch_openness
from talkface.render.eyes import EYES_FILE, EyeMemory, region_indices

from .conftest import landmarks_at


@pytest.fixture(scope="module")
def closing(clip_face):
    """The clip's own blink at its deepest (the shipped clip has one)."""
    model, fit = clip_face
    blinks = BlinkModel.fit(fit.expression, model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index], 25, model)
    assert blinks.deepest().any()
    return blinks.deepest()


@pytest.fixture(scope="module")
def made_eyes(clip_face, clip_frames, closing):
    model, fit = clip_face
    return EyeMemory.build(model, fit.expression, fit.pose, fit.valid, clip_frames, closing)


def _drawn_eye() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A skin-coloured patch with two almond eyes (white, a dark iris) and their region points."""
    region = region_indices()
    patch = np.full((60, 160, 3), (200, 150, 130), np.uint8)
    points = np.zeros((len(region), 2))
    row = {int(index): position for position, index in enumerate(region)}
    for position in range(len(region)):
        points[position] = (80, 5)  # brows and anything not an eye contour: high above
    for (outer, inner, upper, lower), centre in zip(((33, 133, (246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155)),
                                                     (263, 362, (466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))), (45, 115)):
        xs = centre + np.linspace(-20, 20, 9)
        points[row[outer]], points[row[inner]] = (xs[0], 35), (xs[-1], 35)
        for k, (u, l) in enumerate(zip(upper, lower)):
            bulge = 8 * np.sin(np.pi * (k + 1) / 8)
            points[row[u]] = (xs[k + 1], 35 - bulge)
            points[row[l]] = (xs[k + 1], 35 + 0.6 * bulge)
        contour = np.r_[[points[row[outer]]], [points[row[u]] for u in upper], [points[row[inner]]], [points[row[l]] for l in lower[::-1]]]
        cv2.fillPoly(patch, [np.round(contour).astype(np.int32)], (240, 240, 240))
        cv2.circle(patch, (centre, 34), 6, (40, 30, 20), -1)
    return patch, points, region


def test_a_shut_eye_covers_the_eyeball_with_lid_skin():
    patch, points, region = _drawn_eye()
    dark = lambda image: int((image.sum(2) < 200).sum())  # noqa: E731  (the irises)
    white = lambda image: int((image.min(2) > 230).sum())  # noqa: E731
    assert dark(patch) > 150 and white(patch) > 300
    np.testing.assert_array_equal(close_lids(patch, points, region, 0.0), patch)  # share 0: as it was
    half = close_lids(patch, points, region, 0.55)
    shut = close_lids(patch, points, region, 1.0)
    assert white(shut) < 0.1 * white(patch) and dark(shut) < 0.1 * dark(patch)  # no eyeball left (its drawn rim aside)
    assert white(patch) > white(half) > white(shut)  # half-way shows part of it
    # away from the eyes nothing moves
    np.testing.assert_array_equal(shut[:, :20], patch[:, :20])
    np.testing.assert_array_equal(shut[50:], patch[50:])


def test_moved_points_meet_when_shut():
    patch, points, region = _drawn_eye()
    assert patch_openness(points[None], region)[0] > 0.2
    assert patch_openness(closed_points(points, region, 1.0)[None], region)[0] < 0.01
    half = patch_openness(closed_points(points, region, 0.5)[None], region)[0]
    assert 0.4 < half / patch_openness(points[None], region)[0] < 0.6
    for upper, lower, corners in lid_contours(points, region):
        np.testing.assert_array_equal(closed_points(points, region, 1.0)[corners], points[corners])  # corners stay


def test_memory_gets_closed_eyes_keyed_as_the_persons_blink(made_eyes, clip_face):
    model, fit = clip_face
    made = np.flatnonzero(made_eyes.made)
    assert len(made) == SOURCES * len(LEVELS)
    assert (np.diff(made_eyes.frames) > 0).all() and (made_eyes.frames[made] > np.flatnonzero(fit.valid).max()).all()
    assert (made_eyes.previous_entry[made] < 0).all()  # each its own run
    real = np.flatnonzero(~made_eyes.made)
    assert patch_openness(made_eyes.points[made], region_indices()).max() < np.median(patch_openness(made_eyes.points[real], region_indices()))


def test_an_open_motion_never_takes_made_eyes_and_a_blink_the_clip_cannot_show_does(clip_face, clip_frames, closing):
    model, fit = clip_face
    openness = eye_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])
    # the clip without its blinks (it has three): a clip that shows none
    blinking = np.convolve(openness < 0.75 * np.median(openness), np.ones(7), "same") > 0
    memory = EyeMemory.build(model, fit.expression, fit.pose, fit.valid & ~blinking, clip_frames, closing)
    opened = int(np.argmax(openness))
    steps = np.r_[np.zeros(10), 0.5, 1.0, 1.0, 0.5, np.zeros(10)]
    expression = fit.expression[[opened] * len(steps)] + steps[:, None] * closing
    keys = memory.keys_for(model, expression, fit.pose[[opened] * len(steps)])
    path = np.array([p[0][0] for p in memory.select(keys)])
    assert not memory.made[path[steps == 0]].any()
    assert memory.made[path[steps == 1.0]].all()
    shut = patch_openness(memory.points[path], region_indices())
    # landmarks moved as the person's model moves them for the blink (the patch's pixels are shut)
    assert shut[steps == 1.0].max() < 0.75 * shut[steps == 0].min()
    # without made eyes the same blink gets the least open of the clip's open eyes
    plain = EyeMemory.build(model, fit.expression, fit.pose, fit.valid & ~blinking, clip_frames)
    path = np.array([p[0][0] for p in plain.select(keys)])
    assert patch_openness(plain.points[path], region_indices())[steps == 1.0].min() > 0.8 * shut[steps == 0].min()


def test_face_mesh_reads_a_made_shut_eye_as_shut(made_eyes, clip_face, clip_frames, closing):
    # what a viewer sees: the shut patch pasted onto an open-eyed frame, read by the face tracker
    model, fit = clip_face
    openness = eye_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])
    index = int(np.flatnonzero(fit.valid & (openness > np.median(openness)))[0])
    frame = clip_frames[index]
    shut_entries = np.flatnonzero(made_eyes.made)[len(LEVELS) - 1 :: len(LEVELS)]  # level 1.0 of each source
    wanted = landmarks_at(model, fit, index)
    with FaceMeshTracker() as tracker:
        before = eye_openness(tracker.process(frame)[0][None])[0]
    shares = []
    for entry in shut_entries:
        with FaceMeshTracker() as tracker:  # a fresh tracker: no landmarks carried over from the frame before
            shares.append(eye_openness(tracker.process(made_eyes.paste(frame, wanted, [(int(entry), 1.0)]))[0][None])[0] / before)
    # Obama's own blinks read 0.13 of his open lid gap at their deepest
    assert np.median(shares) < 0.35 and max(shares) < 0.5


def test_made_flags_saved_and_checked(made_eyes, tmp_path):
    from talkface.storage import load_npz, save_npz

    made_eyes.save(tmp_path / EYES_FILE)
    loaded = EyeMemory.load(tmp_path / EYES_FILE)
    np.testing.assert_array_equal(loaded.made, made_eyes.made)
    arrays = dict(load_npz(tmp_path / EYES_FILE))
    save_npz(tmp_path / EYES_FILE, **{k: v for k, v in arrays.items() if k != "made"})  # a memory from before: all cut from frames
    assert not EyeMemory.load(tmp_path / EYES_FILE).made.any()
    save_npz(tmp_path / EYES_FILE, **{**arrays, "made": arrays["made"][:-3]})  # damaged
    with pytest.raises(CacheError, match="damaged"):
        EyeMemory.load(tmp_path / EYES_FILE)
    assert EyeMemory.from_profile(tmp_path) is None  # in a profile: a note, the eyes from the texture


def test_no_blink_makes_no_closed_eyes(clip_face, clip_frames, closing):
    model, fit = clip_face
    memory = EyeMemory.build(model, fit.expression, fit.pose, fit.valid, clip_frames, np.zeros_like(closing))
    assert not memory.made.any()
