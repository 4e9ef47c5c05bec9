"""Eye blinks: audio does not predict them, so they are added at the clip's own rate and shape."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkface.face import topology
from talkface.face.topology import eye_openness
from talkface.signals import blink_frames
from talkface.face.fit import landmark_basis, part_only
from talkface.face.model import MorphableModel

PROFILE_RADIUS = 4  # frames either side of the blink's deepest frame
MIN_GAP_SECONDS = 0.8  # no two synthesised blinks closer than this
GAMMA_SHAPE = 2.0  # blink intervals: gamma-distributed (more regular than Poisson, never zero)
LIP_STILLNESS = 100.0  # weight keeping the lips and brows still while a blink moves the eyes
BORROWED_DEPTH = 0.2  # a borrowed blink leaves the model's lids this share open at its deepest (Face Mesh reads real
# shut eyes at 0.03-0.32 of open: 16 corpus clips, 2026-12-07)


@dataclass(frozen=True)
class BlinkModel:
    """How often and how the person blinks.

    Attributes:
        per_minute: blink rate measured in the clip.
        profile: (2 * PROFILE_RADIUS + 1, K) average change of the expression coefficients
            around the deepest frame of a blink.
    """

    per_minute: float
    profile: np.ndarray

    @classmethod
    def fit(cls, expression: np.ndarray, landmarks: np.ndarray, fps: float, model: MorphableModel | None = None) -> "BlinkModel":
        """Measure blinks on a clip's (T, K) expressions and (T, 478, 3) model landmarks.

        With the face `model`, the blink's shape is restricted to the eyes: the few blinks
        in a clip also carry whatever the mouth did at the time, which must not be replayed
        on every synthesised blink.
        """
        openness = eye_openness(landmarks)
        blinks = blink_frames(openness)
        deltas, depths = [], []
        for first, last in blinks:
            deepest = first + int(np.nanargmin(openness[first : last + 1]))
            depths.append(openness[deepest] / np.nanmedian(openness))
            lo, hi = deepest - PROFILE_RADIUS, deepest + PROFILE_RADIUS + 1
            if lo - 2 < 0 or hi + 2 > len(expression) or np.isnan(expression[lo - 2 : hi + 2]).any():
                continue
            baseline = (expression[lo - 2 : lo].mean(0) + expression[hi : hi + 2].mean(0)) / 2
            deltas.append(expression[lo:hi] - baseline)
        minutes = len(expression) / fps / 60
        profile = np.mean(deltas, axis=0) if deltas else np.zeros((2 * PROFILE_RADIUS + 1, expression.shape[1]))
        if model is not None and deltas:
            # averaging blinks that are not perfectly aligned, and keeping the lips still, both
            # make the blink shallower than the real ones: rescale it to the clip's typical depth
            profile = with_depth(eyes_only(profile, model), model, float(np.median(depths)))
        return cls(per_minute=len(blinks) / minutes if minutes > 0 else 0.0, profile=profile.astype(np.float32))

    def sample(self, n_frames: int, fps: float, rng: np.random.Generator, per_minute: float | None = None) -> np.ndarray:
        """(n_frames, K) expression offsets with blinks at `per_minute` (default: the clip's rate)."""
        rate = self.per_minute if per_minute is None else per_minute
        offsets = np.zeros((n_frames, self.profile.shape[1]), np.float32)
        if rate <= 0 or not self.profile.any():
            return offsets
        mean_gap = 60.0 / rate
        time = rng.uniform(0, mean_gap)
        while time * fps < n_frames:
            centre = int(round(time * fps))
            lo, hi = centre - PROFILE_RADIUS, centre + PROFILE_RADIUS + 1
            cut_lo, cut_hi = max(lo, 0), min(hi, n_frames)
            offsets[cut_lo:cut_hi] += self.profile[cut_lo - lo : len(self.profile) - (hi - cut_hi)]
            time += max(MIN_GAP_SECONDS, rng.gamma(GAMMA_SHAPE, mean_gap / GAMMA_SHAPE))
        return offsets

    @classmethod
    def borrowed(cls, per_minute: float, profile: np.ndarray, basis: np.ndarray, model: MorphableModel) -> "BlinkModel":
        """A blink for a person whose clip shows none: the corpus's blink (`profile`: (2R + 1, J)
        coefficients of the (J, 478, 3) landmark `basis`) moved onto the person's face model,
        eyes only, at BORROWED_DEPTH; at the corpus's rate `per_minute`. No blink (rate 0) where
        the person's model cannot close its eyes that way."""
        moves = (np.asarray(profile, np.float64) @ np.asarray(basis, np.float64).reshape(len(basis), -1)).reshape(len(profile), -1, 3)
        eyes = topology.eye_indices()
        still = np.concatenate([topology.lip_indices(), topology.brow_indices()])
        own = landmark_basis(model)
        moving = own[:, eyes].reshape(len(own), -1).T
        staying = own[:, still].reshape(len(own), -1).T
        system = moving.T @ moving + LIP_STILLNESS * staying.T @ staying + 1e-9 * np.eye(len(own))
        coefficients = np.linalg.solve(system, moving.T @ moves[:, eyes].reshape(len(profile), -1).T).T
        rest, closed = _lid_gaps(model, np.stack([np.zeros(model.n_expression), coefficients[PROFILE_RADIUS]]))
        if not closed < rest:  # it would open the eyes (the two faces' axes disagree) or move nothing
            return cls(0.0, np.zeros_like(coefficients, np.float32))
        return cls(float(per_minute), with_depth(coefficients.astype(np.float32), model, BORROWED_DEPTH))

    def deepest(self) -> np.ndarray:
        """(K,) the blink's expression change at its deepest frame (zeros: the clip showed no blink)."""
        return self.profile[PROFILE_RADIUS]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"blink_per_minute": np.float64(self.per_minute), "blink_profile": self.profile}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "BlinkModel":
        return cls(float(arrays["blink_per_minute"]), arrays["blink_profile"])


def eyes_only(deltas: np.ndarray, model: MorphableModel) -> np.ndarray:
    """Expression changes that move the eye points as `deltas` do while keeping lips and brows still."""
    still = np.concatenate([topology.lip_indices(), topology.brow_indices()])
    return part_only(deltas, model, topology.eye_indices(), still, LIP_STILLNESS)


def with_depth(profile: np.ndarray, model: MorphableModel, depth: float) -> np.ndarray:
    """Scale a blink so that at its deepest frame the eyes are `depth` times as open as at rest.

    The lid gap is measured signed (lower lid below the upper one: open), on the model's own
    frontal face, where it is linear in the coefficients: the scale is exact (within 0.5-3x).
    An unsigned gap read lids that had crossed as open again, and so scaled a blink past shut."""
    rest, closed = _lid_gaps(model, np.stack([np.zeros(model.n_expression), profile[PROFILE_RADIUS]]))
    reached = 1 - closed / rest  # fraction of the eye opening the profile closes
    wanted = 1 - depth
    if reached <= 1e-3:
        return profile
    return (profile * np.clip(wanted / reached, 0.5, 3.0)).astype(np.float32)


def held_shut(profile: np.ndarray, model: MorphableModel, frames: int) -> np.ndarray:
    """Scale a blink so that its `frames` deepest frames shut the lids (signed gap 0) and the
    rest close proportionally more, never past shut: an averaged blink (a kit's, made from many
    people) is wide and shallow, shut for one frame at most, which a lid-gap detector rarely saw
    on a photo."""
    rest = _lid_gaps(model, np.zeros((1, model.n_expression)))[0]
    closing = 1 - _lid_gaps(model, profile) / rest  # per frame
    deepest = np.sort(closing)[::-1][min(frames, len(closing)) - 1]
    if deepest <= 1e-3:
        return profile
    widen = 1 / deepest
    scale = np.where(closing > 1e-3, np.minimum(widen, 1 / np.maximum(closing, 1e-3)), widen)
    return (profile * scale[:, None]).astype(np.float32)


def _lid_gaps(model: MorphableModel, coefficients: np.ndarray) -> np.ndarray:
    """(T,) the signed lid gap (eye_openness, signed) of the model's frontal face at each row of
    (T, K) expression coefficients."""
    return eye_openness(model.vertices(np.asarray(coefficients, np.float64))[:, model.landmark_index], signed=True)
