"""The person's audio->motion model: expression from audio (+ the generic prior), pose, blinks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkface.face import topology
from talkface.face.model import FaceFit, MorphableModel, project_landmarks
from talkface.motion.blinks import BlinkModel, eyes_only
from talkface.motion.io import Motion
from talkface.motion.pose import PoseModel
from talkface.motion.prior import MotionPrior
from talkface.motion.ridge import Ridge, chunked, choose_alpha, stack_context

AUDIO_RADIUS = 5  # frames (+-0.2 s) of audio context for the expression
PRIOR_RADIUS = 2  # frames of predicted generic lip motion either side
ALPHAS = (1e2, 3e2, 1e3, 3e3, 1e4, 3e4)
VALIDATION_FRACTION = 0.2  # the clip's last part, held out to report validation quality


@dataclass(frozen=True)
class MotionModel:
    """Everything `speak` needs to turn audio features into a person's motion."""

    expression: Ridge
    prior: MotionPrior | None
    pose: PoseModel
    blinks: BlinkModel
    validation: dict

    @property
    def radius(self) -> int:
        return AUDIO_RADIUS + (PRIOR_RADIUS if self.prior is not None else 0)

    def predict_expression(self, features: np.ndarray) -> np.ndarray:
        """(T, D) audio features -> (T, K) expression coefficients (no blinks)."""
        return chunked(lambda window: self.expression.predict(_inputs(window, self.prior)), features, self.radius)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {**self.expression.to_arrays("expression_"), **self.pose.to_arrays(), **self.blinks.to_arrays()}
        if self.prior is not None:
            arrays.update(self.prior.to_arrays())
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], validation: dict) -> "MotionModel":
        prior = MotionPrior.from_arrays(arrays) if "prior_meta" in arrays else None
        return cls(Ridge.from_arrays(arrays, "expression_"), prior, PoseModel.from_arrays(arrays), BlinkModel.from_arrays(arrays), validation)


def _inputs(features: np.ndarray, prior: MotionPrior | None) -> np.ndarray:
    """The expression ridge's inputs: stacked audio, plus stacked prior lip offsets if any."""
    audio = stack_context(features, AUDIO_RADIUS)
    if prior is None:
        return audio
    return np.concatenate([stack_context(prior.predict(features), PRIOR_RADIUS), audio], axis=1)


def mouth_correlation(model: MorphableModel, predicted: np.ndarray, real: np.ndarray) -> float:
    """Pearson r of mouth opening (frontal model view) between two expression sequences."""
    neutral_pose = np.zeros((len(predicted), 6), np.float32)
    neutral_pose[:, 5] = 1.0
    a = topology.mouth_openness(project_landmarks(model, FaceFit(neutral_pose, predicted.astype(np.float32))))
    b = topology.mouth_openness(project_landmarks(model, FaceFit(neutral_pose, real.astype(np.float32))))
    return float(np.corrcoef(a, b)[0, 1])


def train_motion_model(
    face_model: MorphableModel,
    fit: FaceFit,
    features: np.ndarray,
    fps: float,
    prior: MotionPrior | None,
) -> MotionModel:
    """Fit the expression, pose and blink models on the person's clip.

    The last VALIDATION_FRACTION of the clip is held out first to measure how well mouth
    motion is predicted on unseen speech (reported as `validation`); the final models are
    then refitted on the whole clip with the penalty chosen by blocked cross-validation.

    Args:
        face_model: the person's face model.
        fit: the clip's per-frame fit (T frames).
        features: (T, D) audio features aligned with the clip's frames.
        fps: frames/s.
        prior: the generic lip prior, or None to train without it.
    """
    valid = fit.valid
    inputs = _inputs(features, prior)
    targets = fit.expression.astype(np.float64)
    # 1. validation on the held-out end of the clip
    split = int(len(inputs) * (1 - VALIDATION_FRACTION))
    train, held = valid.copy(), valid.copy()
    train[split:] = False
    held[:split] = False
    alpha = choose_alpha(inputs[train], targets[train], ALPHAS)
    held_prediction = Ridge.fit(inputs[train], targets[train], alpha).predict(inputs[held])
    validation = {
        "held_out_frames": int(held.sum()),
        "mouth_r": mouth_correlation(face_model, held_prediction, targets[held]),
        "alpha": alpha,
    }
    # 2. final models on the whole clip
    alpha = choose_alpha(inputs[valid], targets[valid], ALPHAS)
    expression = Ridge.fit(inputs[valid], targets[valid], alpha)
    pose = PoseModel.fit(features, fit.pose.astype(np.float64), valid)
    blinks = BlinkModel.fit(np.where(valid[:, None], targets, np.nan), project_landmarks(face_model, fit), fps, face_model)
    return MotionModel(expression, prior, pose, blinks, validation)


def generate_motion(
    model: MotionModel,
    face_model: MorphableModel,
    features: np.ndarray,
    fps: float,
    seed: int = 0,
    clip_pose: np.ndarray | None = None,
    blink_rate: float | None = None,
) -> Motion:
    """Audio features -> per-frame expression, pose and landmarks.

    Args:
        model: the person's motion model.
        face_model: the person's face model (for landmarks).
        features: (T, D) audio features.
        fps: frames/s.
        seed: seeds the pose and blink randomness (same seed, same motion).
        clip_pose: (N, 6) poses to replay instead of generated ones (`--pose clip`).
        blink_rate: blinks per minute (default: the clip's rate).
    """
    rng = np.random.default_rng(seed)
    n_frames = len(features)
    expression = own_blinks(model.predict_expression(features), model.blinks, face_model, fps, rng, blink_rate)
    pose = replay(clip_pose, n_frames) if clip_pose is not None else model.pose.predict(features, rng)
    fit = FaceFit(pose.astype(np.float32), expression.astype(np.float32))
    return Motion(fit.expression, fit.pose, project_landmarks(face_model, fit), fps)


def own_blinks(
    expression: np.ndarray, blinks: BlinkModel, face_model: MorphableModel, fps: float, rng: np.random.Generator, per_minute: float | None
) -> np.ndarray:
    """(T, K) expression with its eye movement removed (eyes at rest, lips untouched) and the
    person's blinks added at `per_minute` (None: the clip's rate; 0: none)."""
    rested = expression - eyes_only(expression, face_model)
    return rested + blinks.sample(len(expression), fps, rng, per_minute)


def replay(sequence: np.ndarray, length: int) -> np.ndarray:
    """Play a sequence forwards then backwards as often as needed: no jump at the loop point."""
    sequence = sequence[~np.isnan(sequence).any(axis=1)]
    there_and_back = np.concatenate([sequence, sequence[::-1]])
    repeats = int(np.ceil(length / len(there_and_back)))
    return np.tile(there_and_back, (repeats, 1))[:length]
