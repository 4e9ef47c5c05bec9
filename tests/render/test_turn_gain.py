"""render/turn_gain.py: how much of a head turn the turned frames show, measured on the person's clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talkface.config import TrackConfig
from talkface.face.fit import fit_clip
from talkface.face.model import place_vertices
from talkface.face.tracker import FaceMeshTracker, TrackBuilder
from talkface.render.background import FOLLOW_TURN_DEGREES, TURN_GAIN, follow_turn
from talkface.render.composite import FaceCompositor
from talkface.render.headwarp import HeadWarper, PersonMatter
from talkface.render.turn_gain import FILE, FORMAT, GAIN_RANGE, TurnGain, load_turn_gain, measure_turn_gain, save_turn_gain


def test_gains_are_taken_by_the_sign_of_what_is_lacking():
    gain = TurnGain(np.array([1.1, 1.3, 1.0]), np.array([1.2, 1.6, 1.0]))
    residual = np.radians([[2.0, -3.0, 1.0], [-2.0, 3.0, -1.0]])
    np.testing.assert_allclose(gain.of(residual), [[1.1, 1.6, 1.0], [1.2, 1.3, 1.0]])
    turn = np.degrees(follow_turn(residual, gain.of(residual)))
    np.testing.assert_allclose(turn, [[2.2, -4.8, 1.0], [-2.4, 3.9, -1.0]])
    capped = np.degrees(follow_turn(np.radians([[0.0, -9.0, 0.0]]), gain.of(np.radians([[0.0, -9.0, 0.0]]))))
    assert capped[0, 1] == pytest.approx(-FOLLOW_TURN_DEGREES)  # 9 x 1.6 asked, 10 given


@pytest.mark.parametrize("content", [None, b"", b"{not json", b"[1, 2]", b'{"format": 99, "positive": [1,1,1], "negative": [1,1,1]}',
                                     b'{"format": 2, "positive": [1, 1], "negative": [1, 1, 1]}', b'{"format": 2, "positive": [1, 9, 1], "negative": [1, 1, 1]}',
                                     b'{"format": 2, "positive": [1, NaN, 1], "negative": [1, 1, 1]}', b'{"format": 2, "positive": "fast", "negative": [1, 1, 1]}',
                                     b'{"format": 3, "positive": [1, 3.5, 1], "negative": [1, 1, 1]}', b'{"format": 1}'])
def test_a_missing_or_damaged_record_turns_as_before(tmp_path, content):
    if content is not None:
        (tmp_path / FILE).write_bytes(content)
    gain = load_turn_gain(tmp_path)
    np.testing.assert_array_equal(gain.positive, TURN_GAIN)
    np.testing.assert_array_equal(gain.negative, TURN_GAIN)


def test_a_saved_record_is_read_back(tmp_path):
    save_turn_gain(tmp_path, {"format": FORMAT, "positive": [1.1, 1.4, 1.0], "negative": [1.2, 1.7, 1.0]})
    gain = load_turn_gain(tmp_path)
    np.testing.assert_allclose(gain.negative, [1.2, 1.7, 1.0])
    save_turn_gain(tmp_path, {"format": FORMAT, "positive": [1.1, 2.8, 1.0], "negative": [3.0, 1.7, 1.0]})  # up to 3x
    np.testing.assert_allclose(load_turn_gain(tmp_path).positive, [1.1, 2.8, 1.0])
    # a profile measured before gains went past 2x (format 2) keeps its gains
    save_turn_gain(tmp_path, {"format": 2, "positive": [1.1, 1.4, 1.0], "negative": [2.0, 1.7, 1.0]})
    np.testing.assert_allclose(load_turn_gain(tmp_path).negative, [2.0, 1.7, 1.0])


@pytest.fixture(scope="module")
def measured(clip, clip_face, clip_frames):
    model, fit = clip_face
    with PersonMatter() as matter:
        mattes = [matter(frame) for frame in clip_frames]
    return measure_turn_gain(model, fit.pose, fit.expression, fit.valid, clip_frames, mattes), mattes


def test_the_measured_gain_makes_the_picture_show_the_turn_lacking(clip_face, clip_frames, measured):
    """On the shipped clip's person: the face drawn 4 degrees turned and the head turned the
    measured gain x 4 degrees (as `speak` does for a head lacking 4 degrees) reads, with Face Mesh,
    within a degree of the 4 degrees."""
    record, mattes = measured
    model, fit = clip_face
    assert set(record["shown"]) == {"pitch+", "pitch-", "yaw+", "yaw-"}
    assert all(0.4 < once < 1.3 and twice < 2.0 for once, twice in record["shown"].values()), record["shown"]
    assert sum(twice > once for once, twice in record["shown"].values()) >= 3, record["shown"]  # the head's turn adds to the reading
    assert all(GAIN_RANGE[0] <= g <= GAIN_RANGE[1] for side in ("positive", "negative") for g in record[side]) and record["positive"][2] == 1.0
    json.dumps(record)  # stored as JSON
    gain = TurnGain(np.array(record["positive"]), np.array(record["negative"]))
    index = record["frames"][0]
    pose = fit.pose[index].astype(np.float64)
    lacking = [np.radians([0.0, 4.0, 0.0]), np.radians([0.0, -4.0, 0.0])]
    compositor, builder = FaceCompositor(model, "cpu"), TrackBuilder(TrackConfig(smoothing_window=1))
    with HeadWarper(face=model.mean_shape, mattes=mattes) as warper, FaceMeshTracker() as tracker:
        own = place_vertices(model, fit.expression[index], pose)
        for lack in [np.zeros(3), *lacking]:
            target = pose.copy()
            target[:3] += follow_turn(lack[None], gain.of(lack[None]))[0]
            background = warper(clip_frames[index], index, pose, target)
            drawn = place_vertices(model, fit.expression[index], pose + np.r_[lack, np.zeros(3)])
            picture, _, _ = compositor.composite_keeping(background, drawn, own, clip_frames[index])
            builder.add(tracker.process(picture))
    height, width = clip_frames[0].shape[:2]
    yaw = np.degrees(fit_clip(model, builder.finish("turned", 25.0, width, height)).pose[:, 1].astype(np.float64))
    assert yaw[1] - yaw[0] == pytest.approx(4.0, abs=1.0) and yaw[0] - yaw[2] == pytest.approx(4.0, abs=1.0), yaw



def test_frames_where_face_mesh_finds_no_face_keep_the_default(clip_face):
    """A clip whose turned frames Face Mesh cannot read (here: the fit of the shipped clip over blank
    frames): the record says nothing was measured and the turns are asked as before."""
    model, fit = clip_face
    blank = [np.full((450, 450, 3), 128, np.uint8)] * len(fit.pose)
    record = measure_turn_gain(model, fit.pose, fit.expression, fit.valid, blank, [np.zeros((450, 450), np.float32)] * len(fit.pose))
    assert record["shown"] is None and record["positive"] == list(TURN_GAIN) and record["negative"] == list(TURN_GAIN)
