"""The person's audio->motion model: lips from the generic model adapted to the person, pose, blinks."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from talkface import progress
from talkface.errors import CacheError
from talkface.face.model import FaceFit, MorphableModel, ProjectedLandmarks, project_landmarks
from talkface.motion.blinks import PROFILE_RADIUS, BlinkModel, eyes_only
from talkface.motion.brows import BROW_FLOOR, HOLD_FRAMES, SPREAD_LIMIT, brow_axes, brow_height, brow_spread, fit_brow_gain, widen_brows
from talkface.motion.generic import GenericLipModel
from talkface.motion.genericface import GenericFace
from talkface.motion.io import Motion
from talkface.motion.lips import frontal_mouth_opening, lip_basis, lip_offsets, lips_to_expression, neutral_lips, opening_from_offsets
from talkface.motion.pose import PoseModel
from talkface.motion.ridge import Ridge, chunked, choose_alpha, cross_validated, stack_context
from talkface.signals import best_lag, pearson, subframe_lag

AUDIO_RADIUS = 5  # frames (+-0.2 s) of audio context for the personal ridge
LIP_RADIUS = 2  # frames of generic lip coefficients either side fed to the personal ridge
ALPHAS = (1e1, 3e1, 1e2, 3e2, 1e3, 3e3, 1e4, 3e4)
VALIDATION_FRACTION = 0.2  # the clip's last part, held out to report validation quality
MAX_OFFSET = 6  # frames of audio/video offset looked for in the person's clip
MIN_OFFSET_R = 0.3  # the generic model must match the clip at least this well to trust its offset
GAIN_RANGE = (1.0, 2.5)  # the amplitude calibration only ever widens a shrunk prediction
GENERIC_WEIGHTS = np.linspace(0.0, 1.0, 11)  # blends of the generic prediction and the personal ridge tried
ADAPTED_WEIGHT = 0.5  # share of the lips taken from the generic network adapted to the person (benchmarks/lipsync.py)
CLOSED_QUANTILE = 2  # percent: lips never pass each other further than the person's did in all but this share of the clip
# the mouth's spread over an utterance is held to this range of the person's own (their clip's):
# a prediction on a voice or language unlike the clip's opens the mouth less (0.64-0.89 of the
# person's on French, German and Chinese; benchmarks/lipsync.py), and a regression shrinks it anyway
MOUTH_HOLD = (1.0, 1.25)  # utterances shorter than HOLD_FRAMES are held part of the way, as the brows are


@dataclass(frozen=True)
class MotionModel:
    """Everything `speak` needs to turn audio features into a person's motion.

    The expression is a blend, chosen on the clip by cross-validation, of the generic model's
    lips carried into the person's expression basis and a personal ridge, widened by `gain`:
    `centre + gain * (w * generic + (1 - w) * personal - centre)`; its lips are then moved
    `adapted_weight` of the way to those of the generic network finetuned on the person's clip,
    and held from passing each other further than the person's ever did (`closed_floor`).

    Attributes:
        expression: the personal ridge from the inputs (`ridge_inputs`) to (K,) expression coefficients.
        generic: the person-independent audio->lip model (None: a ridge on audio alone).
        lip_map: (120, K) lip offsets -> the person's expression (`lips_to_expression`).
        generic_weight: w above (0 without a generic model).
        gain: widens the prediction around `centre` so the mouth opens as far as the person's
            does (ridge predictions shrink towards the mean on unseen audio).
        centre: (K,) the clip's mean expression.
        offset_frames: the clip's audio/video offset (frames, fractional) found and corrected before training.
        brow_gain: widens the (smoothed) brow part of the prediction to the person's brow spread
            (see talkface.motion.brows).
        adapted: the generic network finetuned on the person's clip (None: profiles made before it).
        adapted_weight: the share of the lips it gives.
        lip_basis: (K, 120) each expression coefficient's lip offsets (lips are linear in the expression).
        neutral: (40, 3) the person's neutral lips (for the mouth opening).
        closed_floor: the person's lowest mouth opening (signed, see opening_from_offsets), or None.
        brow_limit: the clip's own brow spread (`brows.brow_spread`): the widened brows move between
            BROW_FLOOR and SPREAD_LIMIT times that over an utterance, whatever the speech (None:
            profiles made before it).
        mouth_spread: the clip's own spread (std) of the mouth opening (`frontal_mouth_opening`):
            an utterance's is held within MOUTH_HOLD of it (None: profiles made before it, photos).
    """

    expression: Ridge
    generic: GenericLipModel | None
    lip_map: np.ndarray
    generic_weight: float
    gain: float
    centre: np.ndarray
    offset_frames: float
    pose: PoseModel
    blinks: BlinkModel
    validation: dict
    brow_axes: np.ndarray | None = None
    brow_gain: float = 1.0
    adapted: GenericLipModel | None = None
    adapted_weight: float = 0.0
    lip_basis: np.ndarray | None = None
    neutral: np.ndarray | None = None
    closed_floor: float | None = None
    brow_limit: float | None = None
    mouth_spread: float | None = None

    @property
    def radius(self) -> int:
        return max(LIP_RADIUS + self.generic.radius, AUDIO_RADIUS) if self.generic is not None else AUDIO_RADIUS

    def predict_expression(self, features: np.ndarray) -> np.ndarray:
        """(T, D) audio features -> (T, K) expression coefficients (no blinks); the whole of
        `features` is one utterance, whose mouth and brow spreads are held to the person's."""
        raw = chunked(self._blend, features, self.radius)
        expression = self.centre + self.gain * (raw - self.centre)
        if self.adapted is not None:
            expression = expression + self.adapted_weight * (self.adapted.predict(features) - expression @ self.lip_basis) @ self.lip_map
        if self.closed_floor is not None:
            expression = self._never_past_closed(expression)
        return self._widened(self._held_mouth(expression))

    def _held_mouth(self, expression: np.ndarray) -> np.ndarray:
        """The lip motion (around the clip's mean lips) scaled so the utterance's mouth opening
        spreads within MOUTH_HOLD of the person's own, then held from closing past the person's
        closed mouth again (which narrows it a little: further passes take that up)."""
        if self.mouth_spread is None or self.mouth_spread < 1e-6 or self.lip_basis is None or len(expression) < 2:
            return expression
        for _ in range(3):
            spread = float(opening_from_offsets(self.neutral, expression @ self.lip_basis).std())
            if spread < 1e-9:  # a mouth that never moves (silence) stays still
                return expression
            wanted = float(np.clip(spread / self.mouth_spread, *MOUTH_HOLD)) * self.mouth_spread
            scale = (wanted / spread) ** min(1.0, len(expression) / HOLD_FRAMES)
            if abs(scale - 1.0) < 0.01:
                break
            lips = (expression - self.centre) @ self.lip_basis
            expression = expression + (scale - 1.0) * lips @ self.lip_map
            if self.closed_floor is not None:
                expression = self._never_past_closed(expression)
        return expression

    def _never_past_closed(self, expression: np.ndarray) -> np.ndarray:
        """Frames whose lips pass each other further than `closed_floor` have their lip motion
        (from the clip's mean) shrunk until they meet it: widening a prediction must not press
        the lips through each other, and a pressed mouth still reads as closed."""
        at_centre = opening_from_offsets(self.neutral, (self.centre @ self.lip_basis)[None], signed=True)[0]
        if at_centre <= self.closed_floor:  # the centre's lips meet already: nothing to shrink towards
            return self._opened_to_floor(expression, at_centre)
        for _ in range(2):  # the lip map reaches lips only nearly: a second pass takes up what the first left
            opening = opening_from_offsets(self.neutral, expression @ self.lip_basis, signed=True)
            shrink = np.where(opening < self.closed_floor, (self.closed_floor - at_centre) / np.minimum(opening - at_centre, -1e-9), 1.0)
            lips = (expression - self.centre) @ self.lip_basis
            expression = expression + ((shrink - 1.0)[:, None] * lips) @ self.lip_map
        return expression

    def _opened_to_floor(self, expression: np.ndarray, at_centre: float) -> np.ndarray:
        """`_never_past_closed` where the centre's own lips meet (`at_centre`, its opening: a photo
        whose mouth is closed): frames whose lips pass each other are opened until they meet, along
        the smallest change of the face that opens the lips (the opening's gradient in the
        orthonormal expression basis), its lips alone (`lip_map`: the rest of the face stays). A
        photo of a closed mouth had its lips pressed up to 0.19 mouth widths through each other
        in 16% of frames."""
        low = opening_from_offsets(self.neutral, expression @ self.lip_basis, signed=True) < self.closed_floor
        if not low.any():
            return expression
        step = 1e-3
        centre = (self.centre @ self.lip_basis)[None]
        gradient = (opening_from_offsets(self.neutral, centre + step * self.lip_basis, signed=True) - at_centre) / step
        direction = (gradient @ self.lip_basis) @ self.lip_map
        opens = direction @ self.lip_basis
        at_start = (opening_from_offsets(self.neutral, centre + step * opens[None], signed=True)[0] - at_centre) / step
        if not at_start > 0:  # no lip motion opens this mouth (a degenerate basis): left as it is
            return expression
        expression = expression.copy()
        for _ in range(3):  # Newton steps along the direction: the opening is nearly linear in it
            lips = expression[low] @ self.lip_basis
            opening = opening_from_offsets(self.neutral, lips, signed=True)
            slope = (opening_from_offsets(self.neutral, lips + step * opens, signed=True) - opening) / step
            slope = np.where(slope > 0.1 * at_start, slope, at_start)  # where the opening bends away, the centre's slope
            expression[low] += (np.maximum(self.closed_floor - opening, 0) / slope)[:, None] * direction
        return expression

    def _widened(self, expression: np.ndarray) -> np.ndarray:
        if self.brow_axes is None:
            return expression
        if self.brow_limit is None:
            return widen_brows(expression, self.brow_axes, self.centre, self.brow_gain)
        return widen_brows(expression, self.brow_axes, self.centre, self.brow_gain, SPREAD_LIMIT * self.brow_limit, BROW_FLOOR * self.brow_limit)

    def _blend(self, features: np.ndarray) -> np.ndarray:
        if self.generic is None:
            return self.expression.predict(ridge_inputs(features, None))
        coefficients = self.generic.predict_coefficients(features)  # the network runs once per chunk
        personal = self.expression.predict(ridge_inputs(features, coefficients))
        generic = self.generic.lips_from_coefficients(coefficients) @ self.lip_map
        return self.generic_weight * generic + (1 - self.generic_weight) * personal

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {**self.expression.to_arrays("expression_"), **self.pose.to_arrays(), **self.blinks.to_arrays()}
        arrays.update(
            expression_gain=np.float64(self.gain), expression_centre=self.centre, offset_frames=np.float64(self.offset_frames),
            lip_map=self.lip_map, generic_weight=np.float64(self.generic_weight),
        )
        if self.brow_axes is not None:
            arrays.update(brow_axes=self.brow_axes, brow_gain=np.float64(self.brow_gain))
        if self.generic is not None:
            arrays.update(self.generic.to_arrays())
        if self.adapted is not None:
            arrays.update(self.adapted.to_arrays("adapted_"), adapted_weight=np.float64(self.adapted_weight))
        if self.closed_floor is not None:
            arrays.update(closed_floor=np.float64(self.closed_floor))
        if self.brow_limit is not None:
            arrays.update(brow_limit=np.float64(self.brow_limit))
        if self.mouth_spread is not None:
            arrays.update(mouth_spread=np.float64(self.mouth_spread))
        if self.lip_basis is not None:
            arrays.update(lip_basis=self.lip_basis, neutral_lips=self.neutral)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], validation: dict) -> "MotionModel":
        generic = GenericLipModel.from_arrays(arrays) if "generic_header" in arrays else None
        return cls(
            Ridge.from_arrays(arrays, "expression_"), generic, arrays["lip_map"], float(arrays["generic_weight"]),
            float(arrays["expression_gain"]), arrays["expression_centre"],
            float(arrays["offset_frames"]), PoseModel.from_arrays(arrays), BlinkModel.from_arrays(arrays), validation,
            arrays.get("brow_axes"), float(arrays.get("brow_gain", 1.0)),  # profiles made before brows were widened have neither
            # profiles made before the network was adapted to the person have none of these
            GenericLipModel.from_arrays(arrays, "adapted_") if "adapted_header" in arrays else None, float(arrays.get("adapted_weight", 0.0)),
            arrays.get("lip_basis"), arrays.get("neutral_lips"), float(arrays["closed_floor"]) if "closed_floor" in arrays else None,
            _finite_or_none(arrays.get("brow_limit")), _finite_or_none(arrays.get("mouth_spread")),
        )


def _finite_or_none(value) -> float | None:
    """A scalar, or None where it is missing or not a finite number of at least 0 (damaged)."""
    if value is None:
        return None
    number = float(np.asarray(value, np.float64).reshape(-1)[0]) if np.asarray(value).size else np.nan
    return number if np.isfinite(number) and number >= 0 else None


def ridge_inputs(features: np.ndarray, coefficients: np.ndarray | None) -> np.ndarray:
    """The personal ridge's inputs: the audio features with +-AUDIO_RADIUS frames of context,
    after the generic model's lip coefficients with +-LIP_RADIUS (when there is a generic model)."""
    audio = stack_context(features, AUDIO_RADIUS)
    if coefficients is None:
        return audio
    return np.concatenate([stack_context(coefficients, LIP_RADIUS), audio], axis=1)


def shift_features(features: np.ndarray, offset: float) -> np.ndarray:
    """Features moved so frame t reads the audio of time t - offset (edges repeated); a
    fractional offset interpolates linearly between neighbouring frames."""
    whole = int(np.floor(offset))
    fraction = float(offset) - whole
    shifted = _shift_whole(features, whole)
    if fraction < 1e-6:
        return shifted
    later = _shift_whole(features, whole + 1)  # reads t - whole - 1
    return ((1 - fraction) * shifted + fraction * later).astype(features.dtype)


def _shift_whole(features: np.ndarray, offset: int) -> np.ndarray:
    if offset == 0:
        return features
    padded = np.pad(features, ((abs(offset), abs(offset)), (0, 0)), mode="edge")
    start = abs(offset) - offset
    return padded[start : start + len(features)]


def clip_offset(generic: GenericLipModel, face_model: MorphableModel, fit: FaceFit, features: np.ndarray) -> float:
    """The clip's audio/video offset in frames, to a hundredth (positive: the video lags the
    sound), found by matching the generic model's mouth opening against the tracked one; 0
    when the match is too weak to trust."""
    valid = fit.valid
    predicted = frontal_mouth_opening(face_model, generic.predict(features) @ lips_to_expression(face_model))
    real = frontal_mouth_opening(face_model, np.nan_to_num(fit.expression))
    lag, r = subframe_lag(predicted[valid], real[valid], MAX_OFFSET)
    return round(lag, 2) if np.isfinite(r) and r >= MIN_OFFSET_R else 0.0


def mouth_scores(face_model: MorphableModel, predicted: np.ndarray, real: np.ndarray) -> dict:
    """Mouth-opening r, amplitude ratio (predicted / real std) and best lag of two expression sequences."""
    a = frontal_mouth_opening(face_model, predicted)
    b = frontal_mouth_opening(face_model, real)
    lag, _ = best_lag(a, b, MAX_OFFSET)
    return {"mouth_r": round(pearson(a, b), 4), "amplitude": round(float(a.std() / max(b.std(), 1e-9)), 3), "lag": lag}


def _fit_expression(
    face_model: MorphableModel, inputs: np.ndarray, targets: np.ndarray, generic: np.ndarray | None
) -> tuple[Ridge, float, float, np.ndarray, np.ndarray]:
    """The personal ridge (penalty by blocked cross-validation), the blend weight of the generic
    prediction and the amplitude gain, both chosen on the ridge's cross-validated predictions.

    Args:
        inputs: (N, D) the ridge's inputs; targets: (N, K) expressions.
        generic: (N, K) the generic model's prediction in the person's basis, or None.

    Returns:
        ridge, generic weight, gain, (K,) centre, and the (N, K) cross-validated predictions
        (blended and widened by the gain, as `predict_expression` makes them before the brows).
    """
    alpha = choose_alpha(inputs, targets, ALPHAS)
    held_out = cross_validated(inputs, targets, alpha)
    real = frontal_mouth_opening(face_model, targets)
    weight = 0.0
    if generic is not None:  # the generic model never saw this person: its prediction is out of sample too
        scores = [pearson(frontal_mouth_opening(face_model, w * generic + (1 - w) * held_out), real) for w in GENERIC_WEIGHTS]
        weight = round(float(GENERIC_WEIGHTS[int(np.nanargmax(scores))]), 2)
        held_out = weight * generic + (1 - weight) * held_out
    predicted = frontal_mouth_opening(face_model, held_out)
    gain = float(np.clip(real.std() / max(predicted.std(), 1e-9), *GAIN_RANGE))
    centre = targets.mean(0)
    return Ridge.fit(inputs, targets, alpha), weight, gain, centre, centre + gain * (held_out - centre)


def _rows(array: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if array is None else array[rows]


def train_motion_model(
    face_model: MorphableModel,
    fit: FaceFit,
    features: np.ndarray,
    fps: float,
    generic: GenericLipModel | None,
    loudness_columns: tuple[int, ...] = (),
) -> MotionModel:
    """Fit the expression, pose and blink models on the person's clip.

    The clip's audio/video offset is found (with the generic model) and corrected first. The
    last VALIDATION_FRACTION of the clip is held out to measure how well mouth motion is
    predicted on unseen speech (reported as `validation`); the final models are then refitted
    on the whole clip.

    Args:
        face_model: the person's face model.
        fit: the clip's per-frame fit (T frames).
        features: (T, D) audio features aligned with the clip's frames.
        fps: frames/s.
        generic: the person-independent audio->lip model, or None to learn from the clip alone.
        loudness_columns: the features' log-energy columns: the head's restlessness then follows
            the speech's loudness as the person's did in the clip (motion/pose.py).
    """
    valid = fit.valid
    offset = clip_offset(generic, face_model, fit, features) if generic is not None else 0
    features = shift_features(features, offset)
    coefficients = generic.predict_coefficients(features) if generic is not None else None
    inputs = ridge_inputs(features, coefficients)
    targets = fit.expression.astype(np.float64)
    lip_map = lips_to_expression(face_model)
    generic_expression = generic.lips_from_coefficients(coefficients) @ lip_map if generic is not None else None
    lips = lip_offsets(face_model, np.nan_to_num(targets))
    neutral = neutral_lips(face_model)
    openings = opening_from_offsets(neutral, lips, signed=True)
    gaps = opening_from_offsets(neutral, lips)  # as `frontal_mouth_opening` reads them
    axes = brow_axes(face_model)

    def lip_parts(rows: np.ndarray, end: int) -> dict:
        """The expression model fitted on `rows`, the network adapted on those before `end`."""
        ridge, weight, gain, centre, predicted = _fit_expression(face_model, inputs[rows], targets[rows], _rows(generic_expression, rows))
        return {
            "expression": ridge, "generic_weight": weight, "gain": gain, "centre": centre.astype(np.float32),
            "brow_gain": fit_brow_gain(face_model, predicted, targets[rows], centre, axes),
            "brow_limit": _finite_or_none(brow_spread(targets[rows], axes, centre)),
            "adapted": generic.adapted(features[:end], lips[:end], rows[:end]) if generic is not None else None,
            "closed_floor": float(np.percentile(openings[rows], CLOSED_QUANTILE)),
            "mouth_spread": _finite_or_none(gaps[rows].std()),
        }

    pose = PoseModel.fit(features, fit.pose.astype(np.float64), valid, loudness_columns)
    blinks = BlinkModel.fit(np.where(valid[:, None], targets, np.nan), project_landmarks(face_model, fit), fps, face_model)
    if not blinks.profile.any():
        blinks = _corpus_blinks(face_model)
    model = MotionModel(
        generic=generic, lip_map=lip_map.astype(np.float32), offset_frames=offset, pose=pose, blinks=blinks, validation={},
        brow_axes=axes.astype(np.float32), adapted_weight=ADAPTED_WEIGHT if generic is not None else 0.0,
        lip_basis=lip_basis(face_model), neutral=neutral.astype(np.float32),
        **lip_parts(valid, len(valid)),
    )
    # validation: the same models fitted on the clip's start, scored on its held-out end
    split = int(len(inputs) * (1 - VALIDATION_FRACTION))
    train, held = valid.copy(), valid.copy()
    train[split:] = False
    held[:split] = False
    held_prediction = replace(model, **lip_parts(train, split)).predict_expression(features)[held]
    held_brow_spread = brow_height(face_model, held_prediction).std() / max(brow_height(face_model, targets[held]).std(), 1e-9)
    model.validation.update(
        held_out_frames=int(held.sum()), **mouth_scores(face_model, held_prediction, targets[held]), alpha=model.expression.alpha,
        brow_spread=round(float(held_brow_spread), 3), offset_frames=offset, generic_weight=model.generic_weight,
        adapted_weight=model.adapted_weight, gain=round(model.gain, 3), brow_gain=round(model.brow_gain, 3),
    )
    return model


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
    return Motion(fit.expression, fit.pose, ProjectedLandmarks(face_model, fit), fps)


def _corpus_blinks(face_model: MorphableModel) -> BlinkModel:
    """The corpus's blink, at its rate, for a clip that shows no blink (none when the generic
    face model is not installed)."""
    try:
        kit = GenericFace.load()
    except CacheError as error:
        progress.log(f"note: the clip shows no blink and {error}: the person will not blink")
        return BlinkModel(0.0, np.zeros((2 * PROFILE_RADIUS + 1, face_model.n_expression), np.float32))
    return BlinkModel.borrowed(kit.blinks_per_minute, kit.blink_profile, kit.basis, face_model)


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
