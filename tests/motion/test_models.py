"""Ridge, context stacking, head-pose process and blinks on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.motion.blinks import BlinkModel
from talkface.motion.model import replay
from talkface.motion.pose import PoseModel, _fit_ar2, _simulate_ar2
from talkface.motion.ridge import Ridge, blocked_folds, choose_alpha, chunked, stack_context


def test_stack_context():
    x = np.arange(5, dtype=float)[:, None]
    stacked = stack_context(x, 1)
    np.testing.assert_array_equal(stacked[0], [0, 0, 1])
    np.testing.assert_array_equal(stacked[2], [1, 2, 3])
    np.testing.assert_array_equal(stacked[4], [3, 4, 4])


def test_ridge_recovers_a_linear_map_in_both_forms():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(6, 2))
    for n, d in ((200, 6), (4, 6)):
        x = rng.normal(size=(n, d))
        y = x @ weights + 3.0
        ridge = Ridge.fit(x, y, alpha=1e-6)
        np.testing.assert_allclose(ridge.predict(x), y, atol=1e-3)


def test_chunked_prediction_equals_whole_sequence():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    ridge = Ridge.fit(stack_context(x, 4), rng.normal(size=(500, 2)), 1.0)

    def predict(window):
        return ridge.predict(stack_context(window, 4))

    whole = predict(x)
    np.testing.assert_allclose(chunked(predict, x, 4, chunk=37), whole, atol=1e-5)


def test_blocked_folds_cover_everything_once():
    folds = blocked_folds(103, 5)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(103))
    assert all(np.all(np.diff(f) == 1) for f in folds)


def test_choose_alpha_prefers_little_penalty_on_clean_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5))
    assert choose_alpha(x, x @ rng.normal(size=(5, 1)), (1e-3, 1e3)) == 1e-3


def test_ar_process_is_stationary_and_matches_the_clip():
    rng = np.random.default_rng(3)
    series = _simulate_ar2(np.array([1.6, -0.7]), 0.1, 5000, rng)
    coefficients, noise = _fit_ar2(series)
    np.testing.assert_allclose(coefficients, [1.6, -0.7], atol=0.05)
    long_run = _simulate_ar2(coefficients, noise, 100_000, rng)  # over an hour at 25 fps
    halves = long_run[:50_000].std(), long_run[50_000:].std()
    assert abs(halves[0] / series.std() - 1) < 0.3 and abs(halves[1] / series.std() - 1) < 0.3
    assert abs(long_run[-25_000:].mean()) < 0.5 * series.std(), "no drift"


def test_explosive_ar_fit_is_made_stationary():
    coefficients, _ = _fit_ar2(np.cumsum(np.random.default_rng(4).normal(size=2000)))  # a random walk
    assert np.abs(np.roots([1, -coefficients[0], -coefficients[1]])).max() <= 0.98 + 1e-9


def test_pose_model_keeps_the_clip_amplitude():
    rng = np.random.default_rng(5)
    n = 600
    features = rng.normal(size=(n, 4))
    yaw = _simulate_ar2(np.array([1.7, -0.75]), 0.02, n, rng)
    pose = np.column_stack([yaw * 0.5, yaw, yaw * 0.3, 200 + 5 * yaw, 220 + 3 * yaw, 80 + yaw])
    model = PoseModel.fit(features, pose, np.ones(n, bool))
    # over takes as long as the clip, on new audio, the head moves as much as in the clip
    takes = [model.predict(rng.normal(size=(n, 4)), np.random.default_rng(seed)) for seed in range(12)]
    ratio = np.mean([take.std(0) for take in takes], 0) / pose.std(0)
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio


def _restless_when_loud(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Audio features whose column 0 is a loudness swinging every few seconds, and a head whose
    shocks are three times as strong in the loud stretches (as people move on stressed speech)."""
    from scipy.ndimage import uniform_filter1d

    loud = np.sign(np.sin(np.arange(n) * 2 * np.pi / 150 + rng.uniform(0, 6)))  # 3 s loud, 3 s quiet
    features = np.column_stack([loud + 0.1 * rng.normal(size=n), rng.normal(size=(n, 3))])
    shocks = rng.normal(0, 0.02, n) * np.where(loud > 0, 1.5, 0.5)
    yaw = np.zeros(n)
    for t in range(2, n):
        yaw[t] = 1.7 * yaw[t - 1] - 0.75 * yaw[t - 2] + shocks[t]
    pose = np.column_stack([yaw * 0.5, yaw, yaw * 0.3, 200 + 5 * yaw, 220 + 3 * yaw, 80 + yaw])
    return features, pose


def test_the_head_moves_more_on_loud_speech_as_the_persons_did():
    """Fitted with the features' loudness column, the model learns how much more the person's
    head moves on loud speech and does so on new audio (head speed follows loudness), with the
    clip's spread kept; without it (or loaded from a profile made before), speed ignores loudness."""
    from scipy.ndimage import uniform_filter1d

    rng = np.random.default_rng(7)
    features, pose = _restless_when_loud(1500, rng)
    coupled = PoseModel.fit(features, pose, np.ones(len(pose), bool), (0,))
    plain = PoseModel.fit(features, pose, np.ones(len(pose), bool))
    assert coupled.coupling[1] > 0.3 and not plain.coupling.any()

    def speed_follows_loudness(model: PoseModel) -> tuple[float, float]:
        rs, spreads = [], []
        for seed in range(6):
            new_features, _ = _restless_when_loud(1500, np.random.default_rng(100 + seed))
            yaw = model.predict(new_features, np.random.default_rng(seed))[:, 1]
            speed = uniform_filter1d(np.abs(np.diff(yaw, prepend=yaw[0])), 12)
            rs.append(np.corrcoef(speed, uniform_filter1d(new_features[:, 0], 12))[0, 1])
            spreads.append(yaw.std() / pose[:, 1].std())
        return float(np.mean(rs)), float(np.mean(spreads))

    (r_coupled, spread_coupled), (r_plain, _) = speed_follows_loudness(coupled), speed_follows_loudness(plain)
    assert r_coupled > 0.4 and abs(r_plain) < 0.2 and 0.75 < spread_coupled < 1.3
    arrays = coupled.to_arrays()
    np.testing.assert_array_equal(PoseModel.from_arrays(arrays).coupling, coupled.coupling)
    old = PoseModel.from_arrays({k: v for k, v in arrays.items() if k not in ("pose_coupling", "pose_loudness", "pose_loudness_columns")})
    assert not old.coupling.any() and len(old.loudness_columns) == 0
    # audio features without those columns (narrower than them): the head does not follow loudness
    from dataclasses import replace

    elsewhere = replace(coupled, loudness_columns=np.array([9]))
    np.testing.assert_allclose(elsewhere.predict(features, np.random.default_rng(1)), replace(coupled, coupling=np.zeros(6, np.float32)).predict(features, np.random.default_rng(1)))


def test_blinks_rate_and_shape():
    fps, n = 25, 1500  # one minute
    expression = np.zeros((n, 3))
    landmarks = np.zeros((n, 478, 3))
    from talkface.face.topology import EYE_CORNERS, EYE_LIDS

    for (upper, lower), (inner, outer) in zip(EYE_LIDS, EYE_CORNERS):
        landmarks[:, inner, 0], landmarks[:, outer, 0] = 0, 30
        landmarks[:, upper, 1], landmarks[:, lower, 1] = -5, 5
    for start in range(50, n - 50, 100):  # 14 blinks
        landmarks[start : start + 3, [145, 374], 1] = -4.5
        expression[start : start + 3, 1] = 2.0  # coefficient 1 closes the eyes
    model = BlinkModel.fit(expression, landmarks, fps)
    assert model.per_minute == 14
    assert model.profile[:, 1].max() > 1.5 and abs(model.profile[:, 0]).max() < 1e-9
    sampled = model.sample(25 * 600, fps, np.random.default_rng(0))
    from talkface.face.tracker import runs

    per_minute = len(runs(sampled[:, 1] > 1.0)) / 10
    assert 10 < per_minute < 20
    assert not model.sample(1000, fps, np.random.default_rng(0), per_minute=0).any()


def test_replay_goes_back_and_forth_without_jumps():
    sequence = np.arange(5, dtype=float)[:, None].repeat(6, 1)
    played = replay(sequence, 17)[:, 0]
    assert played.tolist()[:12] == [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0, 1]
    assert np.abs(np.diff(played)).max() <= 1


def test_brows_are_scaled_to_the_persons_spread_and_lips_stay(clip, clip_frames):
    from talkface.face.fit import build_model
    from talkface.face.tracker import track_video
    from talkface.motion.brows import brow_axes, brow_height, fit_brow_gain, widen_brows
    from talkface.motion.lips import frontal_mouth_opening

    model, fit = build_model(track_video(clip))
    real = fit.expression[fit.valid].astype(np.float64)
    centre = real.mean(0)
    mapping = brow_axes(model)
    brows = ((real - centre) @ mapping[0])[:, None] * mapping[1]  # the brow part: moves the brows as the real ones move
    assert 0.8 < brow_height(model, centre + brows).std() / brow_height(model, real).std() < 1.25
    # lips held still by the brow part
    assert np.abs(frontal_mouth_opening(model, centre + brows) - frontal_mouth_opening(model, centre[None])).max() < 0.1 * frontal_mouth_opening(model, real).std()
    # a prediction whose brows move a third as much: the gain brings the spread back
    shrunk = real - brows * (2 / 3)
    gain = fit_brow_gain(model, shrunk, real, centre, mapping)
    assert gain > 1.5
    ratio = brow_height(model, widen_brows(shrunk, mapping, centre, gain)).std() / brow_height(model, real).std()
    assert 0.8 < ratio < 1.25
    # and one whose brows move too much is narrowed
    assert fit_brow_gain(model, real + brows * 2, real, centre, mapping) < 1
    assert np.array_equal(widen_brows(real, mapping, centre, 1.0), real.astype(np.float32))


@pytest.fixture(scope="module")
def brow_parts(clip):
    """The clip's expressions, their mean, the brow axes and the brow part of each expression."""
    from talkface.face.fit import build_model
    from talkface.face.tracker import track_video
    from talkface.motion.brows import brow_axes

    model, fit = build_model(track_video(clip))
    real = fit.expression[fit.valid].astype(np.float64)
    centre = real.mean(0)
    mapping = brow_axes(model)
    return real, centre, mapping, ((real - centre) @ mapping[0])[:, None] * mapping[1]


def test_widened_brows_never_move_further_than_the_persons_own(brow_parts):
    # a gain fitted on the clip's cross-validated predictions can overshoot on other speech (a news
    # reader's gain of 2.8 moved his brows 2.1x as far as his own on his next 10 s): the limit holds
    # them to the clip's spread, and leaves a prediction within it alone
    from talkface.motion.brows import BROW_GAINS, brow_spread, widen_brows

    real, centre, mapping, brows = brow_parts
    limit = brow_spread(real, mapping, centre)
    lively = real + brows * 0.2  # brows moving 1.2x as far; a gain of 2.8 (on their smoothed part) makes that over 2x
    assert brow_spread(widen_brows(lively, mapping, centre, 2.8), mapping, centre) > 2 * limit  # unlimited: the test can fail
    held = brow_spread(widen_brows(lively, mapping, centre, 2.8, limit), mapping, centre)
    assert held == pytest.approx(limit, rel=0.02)
    calm = real - brows * 0.5  # half the spread: widening it by 1.5 stays within the limit, untouched
    assert np.array_equal(widen_brows(calm, mapping, centre, 1.5, limit), widen_brows(calm, mapping, centre, 1.5))
    # one so lively that even the narrowest gain cannot hold it: the narrowest gain, no worse
    wild = real + brows * 20
    narrowest = widen_brows(wild, mapping, centre, BROW_GAINS[0])
    assert brow_spread(widen_brows(wild, mapping, centre, 2.8, limit), mapping, centre) == pytest.approx(brow_spread(narrowest, mapping, centre), rel=0.02)
    # a still face's clip (limit 0): the narrowest gain; a NaN limit is no limit, never NaN brows
    assert brow_spread(widen_brows(lively, mapping, centre, 2.8, 0.0), mapping, centre) < brow_spread(lively, mapping, centre)
    assert np.array_equal(widen_brows(lively, mapping, centre, 2.8, np.nan), widen_brows(lively, mapping, centre, 2.8))
    # one frame, or none: nothing to measure a spread on
    assert widen_brows(lively[:1], mapping, centre, 2.8, limit).shape == (1, real.shape[1])
    assert widen_brows(lively[:0], mapping, centre, 2.8, limit).shape == (0, real.shape[1])


@pytest.mark.parametrize("stored, loaded", [(None, None), (0.0123, 0.0123), (0.0, 0.0), (np.nan, None), (-1.0, None), (np.inf, None), (np.zeros(0), None)])
def test_a_motion_models_brow_limit_loads_or_is_left_out(stored, loaded):
    from talkface.motion.model import _finite_or_none

    result = _finite_or_none(None if stored is None else np.asarray(stored))
    assert (result is None) if loaded is None else result == pytest.approx(loaded)


def test_a_clip_without_blinks_borrows_the_corpus_blink(clip):
    # a speaker who never blinks in the clip still blinks: the corpus's blink moved onto his face
    # model, lids only, at the corpus's rate
    from talkface.face import topology
    from talkface.face.fit import build_model
    from talkface.face.tracker import track_video
    from talkface.motion.blinks import BORROWED_DEPTH, PROFILE_RADIUS, _lid_gaps
    from talkface.motion.genericface import GenericFace
    from talkface.motion.model import _corpus_blinks
    from talkface.signals import blink_frames

    model, fit = build_model(track_video(clip))
    kit = GenericFace.load()
    blinks = _corpus_blinks(model)
    assert blinks.per_minute == pytest.approx(kit.blinks_per_minute) and blinks.per_minute > 5
    rest = _lid_gaps(model, np.zeros((1, model.n_expression)))[0]
    assert _lid_gaps(model, blinks.profile)[PROFILE_RADIUS] / rest == pytest.approx(BORROWED_DEPTH, abs=0.02)
    moved = lambda indices: np.abs(  # noqa: E731
        model.vertices(blinks.deepest()[None].astype(np.float64))[0, model.landmark_index[indices]]
        - model.vertices(np.zeros((1, model.n_expression)))[0, model.landmark_index[indices]]
    ).max()
    assert moved(topology.lip_indices()) < 0.1 * moved(topology.eye_indices())
    assert moved(topology.brow_indices()) < 0.1 * moved(topology.eye_indices())
    offsets = blinks.sample(25 * 60, 25, np.random.default_rng(0))
    assert 10 <= len(blink_frames(_lid_gaps(model, offsets) / rest + 1e-3)) <= 40
    # a blink that would open the eyes (axes that disagree) is refused: no blinks rather than that
    flipped = BlinkModel.borrowed(kit.blinks_per_minute, -kit.blink_profile, kit.basis, model)
    assert flipped.per_minute == 0 and not flipped.profile.any()


def test_brows_that_move_less_than_the_persons_own_are_raised_to_it(brow_parts):
    # a voice unlike the clip's moved a held-out person's brows 0.58 as far as her own: the floor
    # raises them to the clip's spread over an utterance (part of the way over a short one)
    from talkface.motion.brows import BROW_GAINS, HOLD_FRAMES, brow_spread, widen_brows

    real, centre, mapping, brows = brow_parts
    own = brow_spread(real, mapping, centre)
    calm = real - brows * 0.5  # half the spread
    assert brow_spread(widen_brows(calm, mapping, centre, 1.2), mapping, centre) < 0.7 * own  # without the floor: the test can fail
    raised = brow_spread(widen_brows(calm, mapping, centre, 1.2, 1.25 * own, own), mapping, centre)
    assert raised == pytest.approx(own, rel=0.02)
    # a prediction within the range is left alone
    assert np.array_equal(widen_brows(real, mapping, centre, 1.0, 1.25 * own, 0.9 * own), widen_brows(real, mapping, centre, 1.0))
    # never past the widest gain, however still the prediction
    still = centre[None] + 1e-4 * brows
    assert brow_spread(widen_brows(still, mapping, centre, 1.0, None, own), mapping, centre) == pytest.approx(
        brow_spread(widen_brows(still, mapping, centre, BROW_GAINS[-1]), mapping, centre), rel=0.02)
    # a short utterance part of the way; a NaN floor is no floor; one frame or none: as before
    short = calm[: HOLD_FRAMES // 3]
    part = brow_spread(widen_brows(short, mapping, centre, 1.2, None, 5 * own), mapping, centre)
    assert brow_spread(widen_brows(short, mapping, centre, 1.2), mapping, centre) < part < brow_spread(widen_brows(short, mapping, centre, BROW_GAINS[-1]), mapping, centre)
    assert np.array_equal(widen_brows(calm, mapping, centre, 1.2, None, np.nan), widen_brows(calm, mapping, centre, 1.2))
    assert widen_brows(calm[:1], mapping, centre, 1.2, None, own).shape == (1, real.shape[1])
    assert widen_brows(calm[:0], mapping, centre, 1.2, None, own).shape == (0, real.shape[1])
