"""Head pose from audio, personalised: an audio-driven part plus the clip's own motion habits.

Audio predicts head motion only weakly, so the pose is the smoothed audio-driven part plus
a stationary AR(2) process fitted to what audio does not explain. The result keeps the
person's own amplitude and rhythm, moves for any length of audio, and cannot drift (an AR
process that is stationary always returns to its mean).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from talkface.motion.ridge import Ridge, chunked, choose_alpha, cross_validated, stack_context

POSE_RADIUS = 5  # frames of audio context either side
SMOOTHING_SIGMA = 3.0  # frames: head motion is slow
ALPHAS = (1e3, 1e4, 1e5)
MAX_AR_ROOT = 0.98  # AR roots are kept inside this radius so the process stays stationary
CALIBRATION_RUNS = 16  # simulated takes used to match the generated spread to the clip's
LOUDNESS_SMOOTHING = 12  # frames (0.5 s): the loudness the head's restlessness follows
MAX_COUPLING = 0.8  # at most this much more (less) shock variance per standard deviation of loudness
SHOCK_FLOOR = 0.2  # the shock variance never falls below this share of its mean (a head never freezes)


@dataclass(frozen=True)
class PoseModel:
    """Per-dimension standardised pose = smoothed audio part + AR(2) residual.

    Attributes:
        ridge: audio features (stacked +-POSE_RADIUS) -> standardised pose (6).
        mean, std: (6,) the clip's pose statistics.
        ar: (6, 2) AR(2) coefficients of the residual; noise: (6,) its innovation std.
        gain: (6,) calibrates the generated spread to the clip's (see `_spread_gain`).
        loudness_columns: the audio features' log-energy columns (MFCC's first coefficient of each
            10 ms step); empty: the head's motion does not follow loudness.
        loudness_mean, loudness_std: the clip's (smoothed) loudness statistics.
        coupling: (6,) how the AR shocks' variance grows with loudness, per standard deviation of
            it, fitted on the clip: the person moves their head more on loud, stressed speech.
    """

    ridge: Ridge
    mean: np.ndarray
    std: np.ndarray
    ar: np.ndarray
    noise: np.ndarray
    gain: np.ndarray
    loudness_columns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    loudness_mean: float = 0.0
    loudness_std: float = 1.0
    coupling: np.ndarray = field(default_factory=lambda: np.zeros(6, np.float32))

    @classmethod
    def fit(cls, features: np.ndarray, pose: np.ndarray, valid: np.ndarray, loudness_columns=()) -> "PoseModel":
        """Fit on a clip's (T, D) audio features and (T, 6) poses (rows where `valid`);
        `loudness_columns`: the features' log-energy columns, if they have any."""
        x = stack_context(features, POSE_RADIUS)[valid]
        mean, std = pose[valid].mean(0), pose[valid].std(0) + 1e-6
        target = (pose[valid] - mean) / std
        alpha = choose_alpha(x, target, ALPHAS)
        audio_part = gaussian_filter1d(cross_validated(x, target, alpha), SMOOTHING_SIGMA, axis=0)
        residual = target - audio_part
        ar, noise = zip(*(_fit_ar2(residual[:, d]) for d in range(pose.shape[1])))
        ar, noise = np.array(ar, np.float32), np.array(noise, np.float32)
        gain = _spread_gain(audio_part, ar, noise)
        base = (Ridge.fit(x, target, alpha), mean.astype(np.float32), std.astype(np.float32), ar, noise, gain)
        columns = np.asarray(loudness_columns, np.int64)
        if len(columns) == 0 or valid.sum() < 50:
            return cls(*base)
        return cls(*base, columns, *_loudness_coupling(features, valid, columns, residual, ar))

    def predict(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(T, D) audio features -> (T, 6) poses."""
        audio_part = chunked(lambda w: self.ridge.predict(stack_context(w, POSE_RADIUS)), features, POSE_RADIUS)
        audio_part = gaussian_filter1d(audio_part, SMOOTHING_SIGMA, axis=0)
        scales = self._shock_scales(features)
        residual = np.stack([_simulate_ar2(self.ar[d], self.noise[d], len(features), rng, scale=scales[d]) for d in range(len(self.mean))], 1)
        return ((audio_part + residual) * self.gain * self.std + self.mean).astype(np.float32)

    def _shock_scales(self, features: np.ndarray) -> list[np.ndarray | None]:
        """Per dimension, each frame's shock scale from the take's loudness (mean square 1 over the
        take, so the spread stays the clip's); None where the head does not follow loudness."""
        if len(self.loudness_columns) == 0 or not self.coupling.any() or features.shape[1] <= self.loudness_columns.max():
            return [None] * len(self.mean)
        z = (_loudness(features, self.loudness_columns) - self.loudness_mean) / self.loudness_std
        scales = []
        for k in self.coupling:
            variance = np.maximum(1 + k * z, SHOCK_FLOOR)
            scales.append(np.sqrt(variance / variance.mean()) if k > 0 else None)
        return scales

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            **self.ridge.to_arrays("pose_"), "pose_mean": self.mean, "pose_std": self.std, "pose_ar": self.ar, "pose_noise": self.noise, "pose_gain": self.gain,
            "pose_loudness_columns": self.loudness_columns, "pose_loudness": np.array([self.loudness_mean, self.loudness_std]), "pose_coupling": self.coupling,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "PoseModel":
        base = (Ridge.from_arrays(arrays, "pose_"), arrays["pose_mean"], arrays["pose_std"], arrays["pose_ar"], arrays["pose_noise"], arrays["pose_gain"])
        if "pose_coupling" not in arrays:  # profiles made before the head followed loudness
            return cls(*base)
        loudness = arrays["pose_loudness"]
        return cls(*base, arrays["pose_loudness_columns"].astype(np.int64), float(loudness[0]), float(loudness[1]), arrays["pose_coupling"])


def _loudness_coupling(
    features: np.ndarray, valid: np.ndarray, columns: np.ndarray, residual: np.ndarray, ar: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """The clip's loudness mean and std, and per dimension the slope of the AR shocks' power
    (relative to its mean, smoothed like the loudness) against loudness (in its stds), clipped
    to 0..MAX_COUPLING. `residual`: (valid rows, 6) the pose the audio part leaves."""
    loud = _loudness(features, columns)[valid]
    loudness_mean, loudness_std = float(loud.mean()), float(loud.std() + 1e-6)
    z = (loud[2:] - loudness_mean) / loudness_std
    coupling = np.zeros(residual.shape[1], np.float32)
    for d in range(residual.shape[1]):
        shocks = residual[2:, d] - ar[d, 0] * residual[1:-1, d] - ar[d, 1] * residual[:-2, d]
        power = uniform_filter1d(shocks**2, LOUDNESS_SMOOTHING) / max(float(np.mean(shocks**2)), 1e-12)
        coupling[d] = np.clip(np.cov(power, z)[0, 1] / max(float(z.var()), 1e-12), 0.0, MAX_COUPLING)
    return loudness_mean, loudness_std, coupling


def _loudness(features: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(T,) the features' log energy, averaged over its columns and smoothed over LOUDNESS_SMOOTHING frames."""
    return uniform_filter1d(features[:, columns].astype(np.float64).mean(1), LOUDNESS_SMOOTHING)


def _spread_gain(audio_part: np.ndarray, ar: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(6,) gain that gives generated poses the clip's spread over a clip-length take.

    The audio part is the cross-validated one (what unseen audio drives); the AR part is
    simulated CALIBRATION_RUNS times. Shrinking explosive AR roots and the short clip's few
    slow swings otherwise leave generated heads moving less than the person's (measured: 60%).
    """
    rng = np.random.default_rng(0)
    length = max(len(audio_part), 250)
    audio = np.resize(audio_part, (length, audio_part.shape[1]))
    spreads = np.mean(
        [[(audio[:, d] + _simulate_ar2(ar[d], noise[d], length, rng)).std() for d in range(len(ar))] for _ in range(CALIBRATION_RUNS)], 0
    )
    return np.clip(1.0 / np.maximum(spreads, 1e-6), 0.5, 3.0).astype(np.float32)


def _fit_ar2(series: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares AR(2) coefficients and innovation std, made stationary if needed."""
    if len(series) < 10:
        return np.zeros(2), float(series.std())
    x = np.column_stack([series[1:-1], series[:-2]])
    coefficients, *_ = np.linalg.lstsq(x, series[2:], rcond=None)
    roots = np.roots([1, -coefficients[0], -coefficients[1]])
    if np.abs(roots).max() > MAX_AR_ROOT:  # shrink the roots: same rhythm, guaranteed stationary
        roots = roots * (MAX_AR_ROOT / np.abs(roots).max())
        coefficients = np.real([roots.sum(), -roots.prod()])
    noise = float(np.std(series[2:] - x @ coefficients))
    return np.asarray(coefficients), noise


def _simulate_ar2(
    coefficients: np.ndarray, noise: float, length: int, rng: np.random.Generator, burn_in: int = 200, scale: np.ndarray | None = None
) -> np.ndarray:
    """`length` steps of the AR(2) process; `scale`: (length,) each step's shock scale (1 in the burn-in)."""
    out = np.zeros(length + burn_in)
    shocks = rng.normal(0.0, noise, length + burn_in)
    if scale is not None:
        shocks[burn_in:] *= scale
    for t in range(2, length + burn_in):
        out[t] = coefficients[0] * out[t - 1] + coefficients[1] * out[t - 2] + shocks[t]
    return out[burn_in:]
