"""Face tracking on real media: the shipped clip, no face, two faces, gaps; gap filling and smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.config import TrackConfig
from talkface.errors import MultipleFacesError, NoFaceError
from talkface.face.topology import mouth_openness
from talkface.face.tracker import fill_gaps, runs, smooth_tracks, track_video


def _clip_video(folder, frames):
    from talkface.media import write_video

    return write_video(folder / "first10.mp4", frames)


@pytest.fixture(scope="module")
def clip_track(clip):
    return track_video(clip)


def test_tracks_every_frame_of_the_clip(clip_track):
    assert clip_track.n_frames == 75
    assert clip_track.detected.all() and clip_track.tracked.all()
    assert clip_track.landmarks.shape == (75, 478, 3)
    xy = clip_track.landmarks[..., :2]
    assert (xy > 0).all() and (xy < 450).all()
    # the face is about the middle of the frame and 150-250 px wide
    width = clip_track.boxes[:, 2] - clip_track.boxes[:, 0]
    assert 150 < np.median(width) < 250
    # the speaker talks: the mouth opens and closes
    openness = mouth_openness(clip_track.landmarks)
    assert openness.max() - openness.min() > 0.15


def test_no_face_is_a_clear_error(no_face_video):
    with pytest.raises(NoFaceError, match=r"no face found in any of the 30 frames"):
        track_video(no_face_video)


def test_two_similar_faces_are_rejected_with_frame_ranges(two_faces_video):
    with pytest.raises(MultipleFacesError, match=r"two faces of similar size in frames 0-19"):
        track_video(two_faces_video)


def test_short_gaps_are_filled_and_long_gaps_reported(gappy_video):
    track = track_video(gappy_video)
    gaps = track.gaps
    assert any(a <= 10 and b >= 12 and b - a < 6 for a, b in gaps), gaps
    assert any(a <= 30 and b >= 49 for a, b in gaps), gaps
    assert track.tracked[10:13].all(), "a 3-frame gap is interpolated"
    assert not track.tracked[30:50].any(), "a 20-frame gap is left empty"
    assert track.untracked_gaps == [g for g in gaps if g[1] - g[0] + 1 > 6]


def test_runs():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 2), (4, 4)]
    assert runs(np.zeros(3, bool)) == []


def test_fill_gaps_interpolates_linearly_and_holds_at_ends():
    t = np.arange(20, dtype=np.float32)
    landmarks = np.repeat(t[:, None, None], 3, axis=2).repeat(4, axis=1)  # (20, 4, 3) moving linearly
    holed = landmarks.copy()
    holed[[0, 1, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18]] = np.nan  # ends, a 3-gap and a 7-gap
    filled = fill_gaps(holed, max_gap=3)
    np.testing.assert_allclose(filled[5:8], landmarks[5:8])
    np.testing.assert_allclose(filled[0:2], landmarks[[2, 2]])
    assert np.isnan(filled[12:19]).all()


def test_smoothing_removes_jitter_without_lag():
    rng = np.random.default_rng(0)
    t = np.arange(200)
    mouth = 5 * (1 - np.cos(2 * np.pi * t / 6))  # fast syllables: 4 Hz at 25 fps, 10 px wide open
    noisy = mouth + rng.normal(0, 0.5, len(t))
    landmarks = np.zeros((200, 2, 3))
    landmarks[:, 0, 1] = noisy
    config = TrackConfig()
    smoothed = smooth_tracks(landmarks, config.smoothing_window, config.smoothing_order)[:, 0, 1]
    assert np.abs(smoothed - mouth).mean() < np.abs(noisy - mouth).mean()
    lags = range(-3, 4)
    corr = [np.corrcoef(np.roll(smoothed, lag), mouth)[0, 1] for lag in lags]
    assert lags[int(np.argmax(corr))] == 0, "the smoother must not delay the mouth"
    assert np.percentile(smoothed, 95) > 0.95 * np.percentile(mouth, 95), "peaks (wide-open mouth) are kept"


def test_vertical_video_is_tracked_in_its_own_pixels(media_dir, clip_frames):
    from talkface.media import write_video

    canvas = np.zeros((800, 450, 3), np.uint8)  # portrait, the clip in its lower part
    frames = []
    for frame in clip_frames[:10]:
        canvas = canvas.copy()
        canvas[300:750] = frame
        frames.append(canvas)
    track = track_video(write_video(media_dir / "vertical.mp4", frames))
    assert (track.width, track.height) == (450, 800) and track.tracked.all()
    reference = track_video(_clip_video(media_dir, clip_frames[:10]))
    np.testing.assert_allclose(track.landmarks[..., 1].mean(), reference.landmarks[..., 1].mean() + 300, atol=2)
