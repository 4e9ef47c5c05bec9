"""Each metric on constructed cases with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkface.evaluate import metrics
from talkface.face import topology


def test_psnr_known_values():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    assert metrics.psnr(a, b) == metrics.PSNR_CAP
    b[:] = 10  # MSE = 100 -> 10 log10(255^2 / 100)
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))


def test_ssim_matches_the_reference_implementation(clip_frames):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    a, b = clip_frames[0], clip_frames[40]
    expected = skimage_metrics.structural_similarity(
        a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-5)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(a, noisy) < 0.8


def _face(width: float = 128.0) -> np.ndarray:
    """A (478, 3) landmark set whose mesh spans `width` pixels horizontally."""
    rng = np.random.default_rng(3)
    points = rng.uniform(0, 1, (478, 3))
    points[:468, 0] = np.linspace(0, 1, 468)  # the mesh spans exactly [0, width]
    points[468:, 0] = 0.5
    return points * np.array([width, width, 10])


def test_landmark_distance_is_rescaled_to_a_256_px_face():
    reference = np.stack([_face(128.0)] * 4)
    generated = reference.copy()
    generated[..., 0] += 2.0  # 2 px off on a 128-px face = 4 px on a 256-px face
    assert metrics.landmark_distance(generated, reference) == pytest.approx(4.0)
    assert metrics.landmark_distance(generated, reference, topology.lip_indices()) == pytest.approx(4.0)
    generated[1] = np.nan  # a frame without a face is skipped
    assert metrics.landmark_distance(generated, reference) == pytest.approx(4.0)
    assert metrics.landmark_distance(reference, reference) == 0.0


def test_pearson_and_best_lag():
    rng = np.random.default_rng(0)
    signal = np.convolve(rng.normal(size=300), np.ones(4), "same")
    late = np.roll(signal, 3)  # late(t) = signal(t - 3)
    lag, peak = metrics.best_lag(signal, late, 15)
    assert lag == 3 and peak > 0.98
    assert metrics.best_lag(late, signal, 15)[0] == -3
    assert metrics.pearson(signal, signal) == pytest.approx(1.0)
    assert metrics.pearson(signal, -signal) == pytest.approx(-1.0)
    assert np.isnan(metrics.pearson(np.ones(10), signal[:10]))


def test_subframe_lag_finds_a_fraction_of_a_frame():
    from talkface.signals import subframe_lag

    rng = np.random.default_rng(1)
    frequencies, phases = rng.uniform(0.02, 0.12, 12), rng.uniform(0, 2 * np.pi, 12)

    def mouth(t):  # a smooth signal sampled at any time
        return np.sin(2 * np.pi * frequencies[:, None] * t[None] + phases[:, None]).sum(0)

    t = np.arange(400, dtype=np.float64)
    for delay in (2.4, -1.3, 3.0, 0.0):
        lag, peak = subframe_lag(mouth(t), mouth(t - delay), 6)
        assert lag == pytest.approx(delay, abs=0.1) and peak > 0.95
    assert subframe_lag(np.ones(50), mouth(t[:50]), 6)[0] == 0.0  # no correlation at all: no offset


def test_speech_envelope_follows_loudness():
    rate, fps = 16000, 25
    samples = np.zeros(rate * 2, np.float32)
    samples[rate // 2 : rate] = 0.5 * np.sin(2 * np.pi * 200 * np.arange(rate // 2) / rate)  # loud 0.5-1.0 s
    envelope = metrics.speech_envelope(samples, rate, fps, 50)
    assert envelope[15:24].min() > envelope[:10].max() + 40  # dB above silence
    assert np.argmax(envelope > -20) in (12, 13)


def test_blinks_are_short_dips_of_eye_openness():
    openness = np.full(250, 0.3)
    for start in (20, 100, 180):
        openness[start : start + 4] = 0.05  # three 4-frame blinks
    openness[220:245] = 0.05  # eyes shut for a second: not a blink
    assert metrics.blink_frames(openness) == [(20, 23), (100, 103), (180, 183)]


def test_eye_openness_from_landmarks():
    face = _face()[None].repeat(2, 0)
    for (upper, lower), (inner, outer) in zip(topology.EYE_LIDS, topology.EYE_CORNERS):
        face[:, [inner, outer], :2] = [[0, 0], [20, 0]]
        face[0, [upper, lower], :2] = [[10, -4], [10, 4]]
        face[1, [upper, lower], :2] = [[10, -1], [10, 1]]
    np.testing.assert_allclose(metrics.eye_openness(face), [0.4, 0.1])


def test_jitter_is_zero_for_smooth_motion_and_grows_with_shake():
    face = _face(128.0)
    steady = np.stack([face + [t, 0, 0] for t in range(20)])  # constant velocity
    assert metrics.landmark_jitter(steady) == pytest.approx(0.0, abs=1e-9)
    shaky = np.stack([face + [(-1) ** t, 0, 0] for t in range(20)])  # ±1 px: second difference 4 px
    assert metrics.landmark_jitter(shaky) == pytest.approx(8.0)  # 4 px on a 128-px face = 8 at 256


def test_sharpness_drops_with_blur(clip_frames):
    frame = clip_frames[0]
    assert metrics.sharpness(cv2.GaussianBlur(frame, (9, 9), 3)) < 0.5 * metrics.sharpness(frame)


def test_mouth_crop_stays_inside_the_frame(clip_frames):
    from talkface.face.tracker import FaceMeshTracker

    with FaceMeshTracker() as tracker:
        face = tracker.process(clip_frames[0])[0]
    x0, y0, x1, y1 = metrics.mouth_box(face, 450, 450)
    lips = face[topology.lip_indices(), :2]
    assert x0 <= lips[:, 0].min() and x1 >= lips[:, 0].max() and y0 <= lips[:, 1].min() and y1 >= lips[:, 1].max()
    assert metrics.mouth_crop(clip_frames[0], face).shape == (metrics.MOUTH_CROP, metrics.MOUTH_CROP, 3)


def test_head_speed_follows_loudness_only_when_it_does():
    from talkface.evaluate.metrics import head_speed_loudness_r

    rng = np.random.default_rng(0)
    envelope = np.repeat(rng.choice([-60.0, -20.0], 40), 25)  # 1 s stretches of pause and of speech
    restless = np.cumsum(rng.normal(size=(1000, 3)) * np.where(envelope > -40, 1.0, 0.1)[:, None], axis=0)
    steady = np.cumsum(rng.normal(size=(1000, 3)) * 0.5, axis=0)
    assert head_speed_loudness_r(restless, envelope) > 0.7
    assert abs(head_speed_loudness_r(steady, envelope)) < 0.3
