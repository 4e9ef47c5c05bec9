"""The speaker-independent lip space, the shipped generic lip model and the clip-offset search."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from talkface.audio import extract
from talkface.errors import CacheError
from talkface.face import topology
from talkface.face.fit import build_model
from talkface.face.model import FaceFit, project_landmarks
from talkface.face.tracker import track_video
from talkface.motion import generic as generic_module
from talkface.motion.generic import GenericLipModel, LipNetwork, NetworkShape
from talkface.motion.lips import expression_from_lips, frontal_mouth_opening, lip_offsets, neutral_lips, opening_from_offsets
from talkface.motion.model import clip_offset, shift_features
from talkface.signals import pearson


@pytest.fixture(scope="module")
def clip_data(clip, clip_audio):
    track = track_video(clip)
    model, fit = build_model(track)
    return model, fit, extract(clip_audio, "mfcc+whisper", track.n_frames)


@pytest.fixture(scope="module")
def shipped() -> GenericLipModel:
    return GenericLipModel.load()


def _tiny_model(n_features: int = 7) -> GenericLipModel:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    network = LipNetwork(NetworkShape(n_features=n_features, n_components=3, width=8, dilations=(1, 2)))
    network.eval()
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(120, 3)))[0].T.astype(np.float32)
    return GenericLipModel(network, np.zeros(n_features, np.float32), np.ones(n_features, np.float32), basis, np.ones(3, np.float32), np.zeros(120, np.float32), {"note": "tiny"})


def test_lip_offsets_round_trip_through_expression(clip_data):
    model, fit, _ = clip_data
    expression = fit.expression[fit.valid].astype(np.float64)
    offsets = lip_offsets(model, expression)
    recovered = lip_offsets(model, expression_from_lips(model, offsets))
    assert np.abs(recovered - offsets).mean() < 0.1 * np.abs(offsets).mean()


def test_opening_from_offsets_matches_the_landmark_definition(clip_data):
    model, fit, _ = clip_data
    expression = fit.expression[fit.valid]
    frontal = np.zeros((len(expression), 6), np.float32)
    frontal[:, 5] = 1.0
    reference = topology.mouth_openness(project_landmarks(model, FaceFit(frontal, expression)))
    ours = opening_from_offsets(neutral_lips(model), lip_offsets(model, expression))
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    np.testing.assert_allclose(frontal_mouth_opening(model, expression), reference, atol=1e-4)


def test_shipped_model_follows_the_real_mouth(clip_data, shipped):
    model, fit, features = clip_data
    features = shift_features(features, clip_offset(shipped, model, fit, features))  # this clip's sound is ~5 frames off
    predicted = frontal_mouth_opening(model, expression_from_lips(model, shipped.predict(features)))
    real = frontal_mouth_opening(model, np.nan_to_num(fit.expression))
    assert np.isfinite(predicted).all()
    assert pearson(predicted, real) > 0.5
    assert 0.5 < predicted.std() / real.std() < 2.0


def test_shipped_model_records_its_training(shipped):
    assert shipped.meta["clips"] and all(len(clip["sha256"]) == 64 for clip in shipped.meta["clips"])
    assert "congressman_d" in shipped.meta["excluded_people"]
    assert shipped.meta["command"].startswith("python scripts/corpus.py")


def test_chunked_prediction_equals_the_whole(monkeypatch):
    model = _tiny_model()
    features = np.random.default_rng(1).normal(size=(50, 7)).astype(np.float32)
    whole = model.predict(features)
    monkeypatch.setattr(generic_module, "CHUNK_FRAMES", 13)
    np.testing.assert_allclose(model.predict(features), whole, atol=1e-5)
    assert model.predict(features[:0]).shape == (0, 120)


def test_save_load_round_trip(tmp_path):
    model = _tiny_model()
    path = tmp_path / "tiny.safetensors"
    model.save(path)
    again = GenericLipModel.load(path)
    features = np.random.default_rng(2).normal(size=(30, 7)).astype(np.float32)
    np.testing.assert_allclose(again.predict(features), model.predict(features), atol=1e-6)
    assert again.meta == {"note": "tiny"} and not list(tmp_path.glob(".*tmp"))
    arrays = model.to_arrays()
    np.testing.assert_allclose(GenericLipModel.from_arrays(arrays).predict(features), model.predict(features), atol=1e-6)


@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "garbage", "wrong format"])
def test_damaged_model_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    model = _tiny_model()
    if damage != "missing":
        model.save(path)
        data = path.read_bytes()
        if damage == "empty":
            path.write_bytes(b"")
        elif damage == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            path.write_bytes(b"\x00\xff" * 100)
        else:
            path.write_bytes(data.replace(b'\\"format\\": 1', b'\\"format\\": 9'))
    with pytest.raises(CacheError, match="train_lips.py"):
        GenericLipModel.load(path)


def test_shift_features_moves_frames_and_repeats_edges():
    features = np.arange(6, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(shift_features(features, 2)[:, 0], [0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(shift_features(features, -1)[:, 0], [1, 2, 3, 4, 5, 5])
    assert shift_features(features, 0) is features
    # a fractional offset reads between frames: frame t hears time t - 0.5, t + 1.5
    np.testing.assert_allclose(shift_features(features, 0.5)[:, 0], [0, 0.5, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(shift_features(features, -1.5)[:, 0], [1.5, 2.5, 3.5, 4.5, 5, 5])
    assert shift_features(features, 0.5).dtype == np.float32


def test_clip_offset_finds_a_shifted_soundtrack(clip_data, shipped):
    model, fit, features = clip_data
    # the shipped clip comes from obama_weekly_20s.mp4, whose sound is ~5 frames off: correct it first
    in_sync = shift_features(features, clip_offset(shipped, model, fit, features))
    base = clip_offset(shipped, model, fit, in_sync)
    assert abs(base) <= 1  # a 3 s clip: edge frames repeated by the shift can move the peak by one
    assert abs(clip_offset(shipped, model, fit, shift_features(in_sync, 3)) - (base - 3)) <= 1
    assert abs(clip_offset(shipped, model, fit, shift_features(in_sync, -4)) - (base + 4)) <= 1


def test_adapting_to_a_person_fits_their_clip_and_leaves_the_shipped_model_alone(clip_data, shipped):
    model, fit, features = clip_data
    features = shift_features(features, clip_offset(shipped, model, fit, features))
    lips = lip_offsets(model, np.nan_to_num(fit.expression))
    before = shipped.predict(features)

    def error(lip_model):
        return np.abs(lip_model.predict(features) - lips)[fit.valid].mean()

    adapted = shipped.adapted(features, lips, fit.valid, steps=60, seed=3)
    assert error(adapted) < 0.9 * error(shipped)
    np.testing.assert_array_equal(shipped.predict(features), before)  # a copy was trained
    np.testing.assert_allclose(shipped.adapted(features, lips, fit.valid, steps=60, seed=3).predict(features), adapted.predict(features), atol=1e-6)
    np.testing.assert_allclose(shipped.adapted(features, lips, fit.valid, steps=0).predict(features), before, atol=1e-6)
    untracked = shipped.adapted(features, lips * np.nan, np.zeros(len(lips), bool), steps=20)  # nothing to learn from
    np.testing.assert_allclose(untracked.predict(features), before, atol=1e-6)


def test_adapting_on_a_clip_shorter_than_a_window():
    model = _tiny_model()
    rng = np.random.default_rng(4)
    features, lips = rng.normal(size=(9, 7)).astype(np.float32), rng.normal(size=(9, 120)).astype(np.float32)
    adapted = model.adapted(features, lips, np.ones(9, bool), steps=5)
    assert np.isfinite(adapted.predict(features)).all() and adapted.meta["adapted_steps"] == 5


def test_the_persons_model_keeps_lips_from_passing_each_other_and_round_trips(clip_data, shipped):
    from talkface.motion.model import MotionModel, train_motion_model

    model, fit, features = clip_data
    motion = train_motion_model(model, fit, features, 25.0, shipped)
    assert motion.adapted is not None and motion.adapted_weight > 0 and motion.validation["adapted_weight"] == motion.adapted_weight
    loud = np.repeat(features, 3, axis=0) * 1.5  # longer and louder than the clip: widened further
    expression = motion.predict_expression(loud)
    signed = opening_from_offsets(neutral_lips(model), lip_offsets(model, expression), signed=True)
    assert signed.min() >= motion.closed_floor - 0.005
    unheld = replace(motion, closed_floor=None).predict_expression(loud)  # the same prediction, lips free to cross
    assert opening_from_offsets(neutral_lips(model), lip_offsets(model, unheld), signed=True).min() < signed.min()
    arrays = motion.to_arrays()
    again = MotionModel.from_arrays(arrays, motion.validation)
    np.testing.assert_allclose(again.predict_expression(loud), expression, atol=1e-4)
    old_keys = ("adapted_", "closed_floor", "lip_basis", "neutral_lips")  # a profile saved before the adapted network
    old = MotionModel.from_arrays({k: v for k, v in arrays.items() if not k.startswith(old_keys)}, motion.validation)
    assert old.adapted is None and old.closed_floor is None
    assert np.isfinite(old.predict_expression(loud)).all()


def test_the_mouths_spread_over_an_utterance_is_held_to_the_persons_own(clip_data, shipped):
    # speech unlike the clip's (another voice, a language) opened a held-out person's mouth 0.52-0.89
    # as far as their own: the utterance's spread is held within MOUTH_HOLD of the clip's
    from talkface.motion.model import HOLD_FRAMES, MOUTH_HOLD, MotionModel, train_motion_model

    model, fit, features = clip_data
    motion = train_motion_model(model, fit, features, 25.0, shipped)
    own = frontal_mouth_opening(model, fit.expression[fit.valid]).std()
    assert motion.mouth_spread == pytest.approx(own, rel=1e-3)
    speech = np.repeat(features, 2, axis=0)
    spread = lambda m, f=speech: frontal_mouth_opening(model, m.predict_expression(f)).std()  # noqa: E731
    free = replace(motion, mouth_spread=None)
    # a person whose own mouth opens 1.5 times as far: the prediction is widened to it
    lively = replace(motion, mouth_spread=1.5 * spread(free))
    assert MOUTH_HOLD[0] - 0.05 <= spread(lively) / lively.mouth_spread <= MOUTH_HOLD[1]
    # lips never pressed through each other by the widening
    signed = opening_from_offsets(neutral_lips(model), lip_offsets(model, lively.predict_expression(speech)), signed=True)
    assert signed.min() >= motion.closed_floor - 0.005
    # one whose mouth opens a third as far: narrowed to the range's top
    calm = replace(motion, mouth_spread=spread(free) / 3)
    assert spread(calm) / calm.mouth_spread == pytest.approx(MOUTH_HOLD[1], rel=0.06)
    # a short utterance is held part of the way only
    short = speech[: HOLD_FRAMES // 3]
    assert spread(free, short) < spread(lively, short) < MOUTH_HOLD[0] * lively.mouth_spread
    # saved and loaded; a damaged spread (NaN, negative) or one from before loads as none: no hold
    arrays = motion.to_arrays()
    assert MotionModel.from_arrays(arrays, {}).mouth_spread == pytest.approx(motion.mouth_spread)
    for damaged in (np.float64(np.nan), np.float64(-1.0)):
        assert MotionModel.from_arrays({**arrays, "mouth_spread": damaged}, {}).mouth_spread is None
    before = MotionModel.from_arrays({k: v for k, v in arrays.items() if k != "mouth_spread"}, {})
    np.testing.assert_allclose(before.predict_expression(speech), free.predict_expression(speech), atol=1e-5)
    # silence: a mouth that never moves stays still, never NaN
    still = lively.predict_expression(np.zeros_like(speech[:100]))
    assert np.isfinite(still).all()
