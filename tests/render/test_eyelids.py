"""Closed eyes made from the person's open ones, for blinks their clip does not show."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkface.errors import CacheError
from talkface.face.topology import eye_openness
from talkface.face.tracker import FaceMeshTracker
from talkface.motion.blinks import BlinkModel
from talkface.render.eyelids import close_lids, closed_points, lid_contours, patch_openness
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


def test_memory_keeps_the_persons_blink_and_says_how_shut_each_frame_is(made_eyes, clip_face, closing):
    model, fit = clip_face
    assert made_eyes.closing is not None and 0.05 < made_eyes.closing_share <= 1
    opened = int(np.argmax(eye_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])))
    steps = np.r_[np.zeros(10), 0.5, 1.0, 0.5, np.zeros(10)]
    shares = made_eyes.closures(model, fit.expression[[opened] * len(steps)] + steps[:, None] * closing)
    np.testing.assert_allclose(shares[steps == 0], 0, atol=1e-6)
    # shut at the blink's deepest (from this most open frame a little less than from the clip's median one)
    assert shares[11] > 0.85 and 0.3 < shares[10] / shares[11] < 0.7


def test_an_open_patch_is_shut_as_far_as_the_drawn_eyes_and_a_shut_one_is_left(made_eyes):
    region = region_indices()
    openness = patch_openness(made_eyes.points, region)
    opened, shut = int(np.argmax(openness)), int(np.argmin(openness))
    patch, points = made_eyes._shut_as_drawn(opened, 0.0)
    assert patch is made_eyes.patch(opened)  # open eyes drawn: as cut
    patch, points = made_eyes._shut_as_drawn(opened, 1.0)
    assert patch_openness(points[None], region)[0] < 0.8 * openness[opened]  # its lids moved as the model moves them
    assert np.abs(patch.astype(int) - made_eyes.patch(opened)).mean() > 1
    # the clip's own most shut patch needs no more closing for a half-shut drawn eye
    assert made_eyes._shut_as_drawn(shut, 0.5)[0] is made_eyes.patch(shut)


def test_face_mesh_reads_an_open_patch_shut_as_drawn_as_shut(made_eyes, clip_face, clip_frames, closing):
    # what a viewer sees: open patches pasted shut onto an open-eyed frame, read by the face tracker
    model, fit = clip_face
    openness = eye_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])
    index = int(np.flatnonzero(fit.valid & (openness > np.median(openness)))[0])
    frame = clip_frames[index]
    from talkface.face.model import place_vertices

    wanted = place_vertices(model, fit.expression[index] + closing, fit.pose[index])[model.landmark_index]  # drawn shut
    entries = np.argsort(patch_openness(made_eyes.points, region_indices()))[::-1][:: max(1, len(made_eyes) // 12)][:6]  # open ones, spread
    with FaceMeshTracker() as tracker:
        before = eye_openness(tracker.process(frame)[0][None])[0]
    shares = []
    for entry in entries:
        with FaceMeshTracker() as tracker:  # a fresh tracker: no landmarks carried over from the frame before
            pasted = made_eyes.paste(frame, wanted, [(int(entry), 1.0)], shut=1.0)
            shares.append(eye_openness(tracker.process(pasted)[0][None])[0] / before)
    # Obama's own blinks read 0.13 of his open lid gap at their deepest
    assert np.median(shares) < 0.35 and max(shares) < 0.5, np.round(shares, 2)
    # and shut=0 pastes as before
    open_drawn = landmarks_at(model, fit, index)
    np.testing.assert_array_equal(made_eyes.paste(frame, open_drawn, [(int(entries[0]), 1.0)], shut=0.0), made_eyes.paste(frame, open_drawn, [(int(entries[0]), 1.0)]))


def test_the_blink_is_saved_and_checked(made_eyes, tmp_path):
    from talkface.storage import load_npz, save_npz

    made_eyes.save(tmp_path / EYES_FILE)
    loaded = EyeMemory.load(tmp_path / EYES_FILE)
    np.testing.assert_array_equal(loaded.closing, made_eyes.closing)
    assert loaded.closing_share == pytest.approx(made_eyes.closing_share)
    arrays = dict(load_npz(tmp_path / EYES_FILE))
    save_npz(tmp_path / EYES_FILE, **{k: v for k, v in arrays.items() if k not in ("closing", "closing_share")})  # a memory from before
    assert EyeMemory.load(tmp_path / EYES_FILE).closing is None
    for bad in ({"closing": arrays["closing"][None]}, {"closing": arrays["closing"] * np.nan}, {"closing_share": np.float64(np.nan)}, {"closing_share": np.float64(-1)}):
        save_npz(tmp_path / EYES_FILE, **{**arrays, **bad})  # damaged: other shape, NaN, a share out of range
        with pytest.raises(CacheError, match="damaged"):
            EyeMemory.load(tmp_path / EYES_FILE)
        assert EyeMemory.from_profile(tmp_path) is None  # in a profile: a note, the eyes from the texture


def test_without_a_blink_nothing_is_shut(clip_face, clip_frames, closing):
    model, fit = clip_face
    memory = EyeMemory.build(model, fit.expression, fit.pose, fit.valid, clip_frames, np.zeros_like(closing))
    assert memory.closing is None and not memory.closures(model, fit.expression).any()
    with pytest.raises(CacheError, match="too few"):  # one frame is enough only with a blink to shut its eyes
        EyeMemory.build(model, fit.expression, fit.pose, np.eye(1, len(fit.valid), 3, dtype=bool)[0], clip_frames)
    single = EyeMemory.build(model, fit.expression, fit.pose, np.eye(1, len(fit.valid), 3, dtype=bool)[0], clip_frames, closing)
    assert len(single) == 1 and single.closures(model, fit.expression).max() > 0.9
    # a photo's one pair of eyes is on its face already: pasted only to shut them
    frame, drawn = clip_frames[3], landmarks_at(model, fit, 3)
    assert single.paste(frame, drawn, [(0, 1.0)], shut=0.0) is frame
    assert np.abs(single.paste(frame, drawn, [(0, 1.0)], shut=1.0).astype(int) - frame).mean() > 0.1


def test_the_clips_own_shut_eyes_come_first_and_without_them_open_ones_are_shut_as_drawn(made_eyes, clip_face, clip_frames, closing):
    model, fit = clip_face
    openness = eye_openness(model.vertices(fit.expression.astype(np.float64))[:, model.landmark_index])
    opened = int(np.argmax(openness))
    steps = np.r_[np.zeros(10), 1.0, 1.0, np.zeros(10)]
    expression = fit.expression[[opened] * len(steps)] + steps[:, None] * closing
    pose = fit.pose[[opened] * len(steps)]
    lid_gaps = lambda memory, picks: patch_openness(memory.points, region_indices())[[p[0][0] for p in picks]]  # noqa: E731
    # the shipped clip blinks three times, shutting its eyes: its own shut eyes are chosen
    picks, shut = made_eyes.choose(model, expression, pose)
    median = np.median(patch_openness(made_eyes.points, region_indices()))
    assert made_eyes._shows_shut_eyes() and lid_gaps(made_eyes, picks)[steps == 1].min() < 0.4 * median and lid_gaps(made_eyes, picks)[steps == 1].max() < 0.75 * median
    np.testing.assert_allclose(shut[steps == 1], 1.0)
    np.testing.assert_allclose(shut[steps == 0], 0.0, atol=1e-6)
    # without its blinks it shows no shut eye: open eyes are chosen, to be shut as drawn
    blinking = np.convolve(openness < 0.75 * np.median(openness), np.ones(7), "same") > 0
    memory = EyeMemory.build(model, fit.expression, fit.pose, fit.valid & ~blinking, clip_frames, closing)
    assert not memory._shows_shut_eyes()
    picks, shut = memory.choose(model, expression, pose)
    assert lid_gaps(memory, picks)[steps == 1].min() > 0.8 * np.median(patch_openness(memory.points, region_indices()))
    np.testing.assert_allclose(shut[steps == 1], 1.0)
