"""The person's own eyes, lids and brows, replayed from their clip.

The face texture holds one open-eyed look, so a rendered blink only squeezes open eyes and the
brows keep one fold. Instead, the upper face (both eyes with their lids and brows) of every
output frame is taken from a frame of the person's clip whose eye and brow shape and head angle
match: shut lids for a blink, raised brows for raised brows. The clip frames are chosen for the
whole motion at once (dynamic programming) so that runs of consecutive clip frames play: the
person's real gaze and lid movement, not a jump every frame. Each chosen patch is warped onto
the rendered eyes, matched to the frame's light and blended in under a soft mask; a change of
run fades over a few frames unless it is a blink.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from talkface import progress
from talkface.errors import CacheError
from talkface.face import topology
from talkface.face.geometry import similarity_matrix
from talkface.face.model import MorphableModel, place_vertices
from talkface.render.eyelids import close_lids, closed_points, closure_shares, model_closing_share, patch_openness, shut_whole
from talkface.render.frames import decode_jpeg, encode_jpegs
from talkface.storage import load_npz, save_npz

EYES_FORMAT = 2
EYES_FILE = "eyes.npz"
PATCH_SIZE = (2.6, 1.5)  # (width, height) of a stored patch, in eye distances
PATCH_RAISE = 0.3  # a patch is centred this far above the eyes' midpoint, in eye distances
MAX_EYE_DISTANCE = 160.0  # px: patches of larger faces are stored at this scale
DOWNSCALE_BEFORE = 0.75  # a patch smaller than the frame's face by more than this is area-shrunk first
# eyes, brows and head angle in the keys, each part of unit spread. The head angle weighed 0.7
# until 2026-11-30: patches then came from clip frames up to several degrees off the drawn head's
# pitch, and the face tracker read the brows' pitch-driven rise on Obama's generated motion at
# 0.58 of the motion's (2.0: 0.67; without the eye memory 0.70)
PART_WEIGHTS = (1.0, 1.0, 2.0)
LEGACY_PART_WEIGHTS = (1.0, 1.0, 0.7)  # the weights of memories saved without their weights
SWITCH_COST = 2.4  # a change of run costs this much key distance (1.0 when the keys' total variance was 1 + 1 + 0.7², now 1 + 1 + 2²)
FADE_FRAMES = 2  # frames over which a change of run fades in
FADE_LIMIT = 1.0  # a change between keys farther apart than this (a blink) does not fade
MASK_GROW = 0.14  # the blend mask reaches this far past the eyes and brows, in eye distances
MASK_SOFTNESS = 0.07  # and fades over this, in eye distances
GAIN_LIMITS = (0.8, 1.25)  # per-channel light correction of a patch
CACHED_PATCHES = 8
MASK_SCALE = 4  # the blend mask is made at 1 / MASK_SCALE of the resolution
SHUT_PATCH = 0.3  # a patch whose lid gap is at most this share of the median one shows shut eyes
CLOSE_FROM = 0.03  # a patch is closed further (render/eyelids.py) only where the drawn eyes need this much more shut


def region_indices() -> np.ndarray:
    """The landmarks the patches are placed by: both eyes' contours and both brows."""
    return np.concatenate([topology.eye_indices(), topology.brow_indices()])


def raw_keys(model: MorphableModel, expression: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, K) expressions and (T, 6) poses -> the parts of a key, unscaled: (T, 64) the eyes'
    contours in the frontal face (centred), (T, 40) the brows relative to the eyes' centre, and
    (T, 2) head pitch and yaw."""
    points = model.vertices(np.asarray(expression, np.float64))[:, model.landmark_index[region_indices()], :2]
    n_eye = len(topology.eye_indices())
    centre = points[:, :n_eye].mean(1, keepdims=True)
    eyes = (points[:, :n_eye] - centre).reshape(len(points), -1)
    brows = (points[:, n_eye:] - centre).reshape(len(points), -1)
    return eyes, brows, np.asarray(pose, np.float64)[:, :2]


def _eye_distance(points: np.ndarray) -> float:
    """Distance between the eyes' centres from placed landmarks (478, >=2)."""
    right, left = topology.eye_centres(points)
    return float(np.linalg.norm(left - right))


def _cut_patch(frame: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The upright patch `matrix` maps `frame` to: one bicubic resample, after an area-averaged
    shrink only when the patch is much smaller than the frame's face (cv2.warpAffine has no
    area mode: its INTER_AREA is bilinear, which kept the eyes 0.77 as sharp as the frame's)."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < DOWNSCALE_BEFORE:
        height, width = frame.shape[:2]
        small = cv2.resize(frame, (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / width, small.shape[0] / height
        # a pixel centre x of the frame is at (x + 0.5) * fx - 0.5 in the shrunk one
        linear = matrix[:, :2] / np.array([fx, fy])
        offset = matrix[:, 2] + linear @ np.array([0.5 - 0.5 * fx, 0.5 - 0.5 * fy])
        frame, matrix = small, np.hstack([linear, offset[:, None]])
    return cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _patch_matrix(landmarks: np.ndarray, distance: float, size: tuple[int, int]) -> np.ndarray:
    """(2, 3) upright similarity from the image to a patch in which the eyes are `distance` apart."""
    right, left = topology.eye_centres(landmarks)
    line = left - right
    scale = distance / max(np.linalg.norm(line), 1e-6)
    cos, sin = line / max(np.linalg.norm(line), 1e-6)
    up = np.array([sin, -cos])
    centre = (left + right) / 2 + up * PATCH_RAISE * np.linalg.norm(line)
    rotation = scale * np.array([[cos, sin], [-sin, cos]])
    offset = np.array(size, np.float64) / 2 - rotation @ centre
    return np.hstack([rotation, offset[:, None]])


@dataclass
class RegionMemory:
    """Upright patches of one region of the clip's face, addressed by the region's shape and the
    head angle; a subclass says which region, how a patch is cut, keyed, warped and masked (the
    defaults here are the eyes', see `EyeMemory`; `MouthPatches` overrides them).

    Attributes:
        jpeg, offsets: the patches as concatenated JPEG bytes (see `encode_jpegs`).
        points: (N, P, 2) the region's landmarks in each patch.
        frames: (N,) the clip frame of each patch, increasing.
        keys: (N, D) scaled keys (see `keys_for`).
        scales: (P,) the divisors of the parts of a key (the last part: head pitch and yaw).
        closing: (K,) the person's blink at its deepest (expression change), or None: with it, a
            patch whose eyes are more open than the drawn ones is closed as far as they are
            (render/eyelids.py), for blinks the clip shows too few of.
    """

    FORMAT = EYES_FORMAT
    FILE = EYES_FILE
    PART_WEIGHTS = PART_WEIGHTS
    LEGACY_PART_WEIGHTS = LEGACY_PART_WEIGHTS
    PATCH_SIZE = PATCH_SIZE
    SWITCH_COST = SWITCH_COST
    FADE_LIMIT = FADE_LIMIT
    NAME = "eyes"

    @staticmethod
    def region() -> np.ndarray:
        """The landmarks a patch is placed by."""
        return region_indices()

    @staticmethod
    def key_parts(model: MorphableModel, expression: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, ...]:
        return raw_keys(model, expression, pose)

    @staticmethod
    def patch_matrix(landmarks: np.ndarray, distance: float, size: tuple[int, int]) -> np.ndarray:
        return _patch_matrix(landmarks, distance, size)

    @staticmethod
    def maps(source: np.ndarray, target: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _patch_maps(source, target, grid)

    @staticmethod
    def mask(points: np.ndarray, size: tuple[int, int], distance: float) -> np.ndarray:
        return _mask(points, size, distance)

    @staticmethod
    def reach(distance: float) -> float:
        """How far past the region's landmarks a paste reaches, in pixels."""
        return MASK_GROW * distance + 3 * MASK_SOFTNESS * distance + 2

    @staticmethod
    def light_mask(solid: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(H, W) uint8: where the patch's light is matched to the frame's (`target`: the region's
        landmarks in the box)."""
        return solid

    jpeg: np.ndarray
    offsets: np.ndarray
    points: np.ndarray
    frames: np.ndarray
    keys: np.ndarray
    scales: np.ndarray
    closing: np.ndarray | None = None  # (K,) the person's blink at its deepest
    closing_share: float = 1.0  # the share of the lid gap that blink closes on the person's face model

    def __post_init__(self):
        self._cache: dict[int, np.ndarray] = {}
        self._open_gap: float | None = None  # the memory's median lid gap, made when first needed
        if self.closing is not None:
            self.closing = np.asarray(self.closing, np.float32)
            if self.closing.ndim != 1 or not np.isfinite(self.closing).all() or not 0 < self.closing_share <= 1:
                raise CacheError(
                    f"the {self.NAME} memory is damaged (its blink: shape {self.closing.shape}, closing {self.closing_share}); run finetune again to rebuild it"
                )
        frames = self.frames
        self.previous_entry = np.where(np.r_[False, frames[1:] == frames[:-1] + 1], np.arange(len(frames)) - 1, -1)
        self.next_entry = np.where(np.r_[frames[1:] == frames[:-1] + 1, False], np.arange(len(frames)) + 1, -1)

    def __len__(self) -> int:
        return len(self.frames)

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def build(
        cls, model: MorphableModel, expression: np.ndarray, pose: np.ndarray, usable: np.ndarray, frames: Iterable[np.ndarray],
        closing: np.ndarray | None = None,
    ) -> "RegionMemory":
        """Patches from the clip's `frames` (RGB, in order) where `usable`; expression and pose: the clip's fit.
        `closing`: (K,) the expression change of the person's blink at its deepest, kept so that
        `paste` can close a patch's eyes as far as the drawn ones (render/eyelids.py); with it one
        frame is enough (a photo)."""
        rows = np.flatnonzero(usable)
        making = closing is not None and np.any(closing)
        if len(rows) < (1 if making else 2):  # one frame is enough where its eyes can be shut as drawn (a photo)
            raise CacheError(f"too few tracked frames to keep the person's {cls.NAME}")
        landmarks = {int(i): place_vertices(model, expression[i], pose[i])[model.landmark_index] for i in rows}
        distance = min(float(np.median([_eye_distance(points) for points in landmarks.values()])), MAX_EYE_DISTANCE)
        size = (int(round(cls.PATCH_SIZE[0] * distance)), int(round(cls.PATCH_SIZE[1] * distance)))
        region = cls.region()
        patches, points = [], []
        for index, frame in enumerate(frames):
            if index not in landmarks:
                continue
            matrix = cls.patch_matrix(landmarks[index], distance, size)
            patches.append(_cut_patch(frame, matrix, size))
            points.append(landmarks[index][region, :2] @ matrix[:, :2].T + matrix[:, 2])
        rows = rows[: len(patches)]
        points = np.asarray(points, np.float32)
        parts = cls.key_parts(model, expression[rows], pose[rows])
        scales = np.array([np.sqrt(part.var(0).sum()) for part in parts])
        # a part that does not vary counts for nothing (every patch alike there), a still head's angles by degrees
        scales = np.where(scales[:-1] > 1e-6, scales[:-1], 1.0).tolist() + [max(scales[-1], np.radians(2.0))]
        keys = _scaled(parts, np.array(scales), cls.PART_WEIGHTS)
        jpeg, offsets = encode_jpegs(patches)
        memory = cls(jpeg, offsets, points, rows.astype(np.int64), keys, np.array(scales, np.float64))
        if making:
            memory.closing = np.asarray(closing, np.float32)
            memory.closing_share = model_closing_share(model, expression[rows], memory.closing)
        return memory

    # -- choosing ----------------------------------------------------------------------------
    def keys_for(self, model: MorphableModel, expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(T, D) float32 keys of T frames, made KEY_CHUNK frames at a time: the face's vertices
        behind them take ~40 kB a frame (3.7 GB for an hour of speech at once)."""
        chunks = [
            _scaled(self.key_parts(model, expression[start : start + KEY_CHUNK], pose[start : start + KEY_CHUNK]), self.scales, self.PART_WEIGHTS)
            for start in range(0, max(len(pose), 1), KEY_CHUNK)
        ]
        return np.concatenate(chunks)

    def select(self, keys: np.ndarray, exclude_frames: np.ndarray | None = None, window: int = 0) -> list[list[tuple[int, float]]]:
        """For each of T frames with `keys`, the patches to mix: [(entry, weight), ...].

        Minimises the key distances plus SWITCH_COST per change of run over the whole sequence.
        With `exclude_frames` (the clip frame each output frame is), patches within `window`
        frames of it are not used (training the refiner on the clip itself).
        """
        n_frames = len(keys)
        if n_frames == 0:
            return []
        back = np.zeros((n_frames, len(self)), bool)  # True: the run continues from the previous entry
        switch_from = np.zeros(n_frames, np.int64)
        totals = None
        has_previous = self.previous_entry >= 0
        for t in range(n_frames):
            cost = ((self.keys - keys[t]) ** 2).sum(1) if np.isfinite(keys[t]).all() else np.zeros(len(self))  # no face: any
            if exclude_frames is not None:
                cost[np.abs(self.frames - exclude_frames[t]) <= window] = np.inf
            if totals is None:
                totals = cost
                continue
            best = int(np.argmin(totals))
            switch_from[t] = best
            continued = np.where(has_previous, totals[self.previous_entry], np.inf)
            back[t] = continued <= totals[best] + self.SWITCH_COST
            totals = cost + np.minimum(continued, totals[best] + self.SWITCH_COST)
        path = np.empty(n_frames, np.int64)
        entry = int(np.argmin(totals))
        for t in range(n_frames - 1, -1, -1):
            path[t] = entry
            entry = int(self.previous_entry[entry]) if back[t, entry] else int(switch_from[t])
        return self._fades(path)

    def _fades(self, path: np.ndarray) -> list[list[tuple[int, float]]]:
        """Each frame's entry, with the run it left fading out over FADE_FRAMES (not for blinks)."""
        picks = [[(int(entry), 1.0)] for entry in path]
        for t in range(1, len(path)):
            old = int(self.next_entry[path[t - 1]])
            if old == path[t] or old < 0 or ((self.keys[old] - self.keys[path[t]]) ** 2).sum() > self.FADE_LIMIT:
                continue
            for step in range(FADE_FRAMES):
                if t + step >= len(path) or old < 0:
                    break
                fade = 1 - (step + 1) / (FADE_FRAMES + 1)
                picks[t + step] = [(int(path[t + step]), 1 - fade), (old, fade)]
                old = int(self.next_entry[old])
        return picks

    # -- drawing -----------------------------------------------------------------------------
    def patch(self, entry: int) -> np.ndarray:
        if entry not in self._cache:
            image = decode_jpeg(self.jpeg, self.offsets, entry)
            if image is None:
                raise CacheError(f"patch {entry} of the {self.NAME} cannot be decoded; finetune again to rebuild the profile")
            if len(self._cache) >= CACHED_PATCHES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[entry] = image
        return self._cache[entry]

    def paste(
        self, frame: np.ndarray, landmarks: np.ndarray, picks: list[tuple[int, float]], face_weight: np.ndarray | None = None, shut: float = 0.0
    ) -> np.ndarray:
        """Blend the picked patches onto the region at `landmarks` (478, >=2 image px) of `frame` (RGB uint8).

        `face_weight`: (H, W) the rendered face's blend weight; the patch stays inside it.
        `shut`: how far the drawn eyes are shut, 0 (open) to 1 (`closures`): a patch whose eyes are
        more open is closed that far first.
        """
        height, width = frame.shape[:2]
        target = landmarks[self.region(), :2].astype(np.float64)
        if not np.isfinite(target).all():
            return frame
        if len(self) == 1 and self.closing is not None and shut < CLOSE_FROM:
            # a photo's one pair of eyes: its own skin already shows them open (pasted, resampled
            # twice, they were 0.92-0.95 as sharp); pasted only to shut them
            return frame
        distance = _eye_distance(landmarks)
        reach = self.reach(distance)
        x0, y0 = np.maximum(np.floor(target.min(0) - reach).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(target.max(0) + reach).astype(int) + 1, [width, height])
        if x1 - x0 < 4 or y1 - y0 < 4:
            return frame
        box = (int(x1 - x0), int(y1 - y0))
        mask = self.mask(target - [x0, y0], box, distance)
        mixed = np.zeros((box[1], box[0], 3), np.float32)
        grid = np.mgrid[0 : box[1], 0 : box[0]].astype(np.float32)[::-1]  # (x, y) of each box pixel
        for entry, weight in picks:
            patch, points = self._shut_as_drawn(entry, shut)
            map_x, map_y = self.maps(points.astype(np.float64), target - [x0, y0], grid)
            mixed += weight * cv2.remap(patch, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)  # bilinear: the upper face 0.62 as sharp as the real one, bicubic 0.85
        inside = frame[y0:y1, x0:x1]
        if face_weight is not None:
            mask *= face_weight[y0:y1, x0:x1]
        solid = self.light_mask((mask > 0.5).view(np.uint8), target - [x0, y0])
        gain = np.ones(3)
        if cv2.countNonZero(solid) > 20:
            gain = np.clip(np.array(cv2.mean(inside, solid)[:3]) / np.maximum(np.array(cv2.mean(mixed, solid)[:3]), 1.0), *GAIN_LIMITS)
        # inside + mask * (gain * mixed - inside), rounded
        blended = mixed * gain.astype(np.float32) if (gain != 1).any() else mixed
        blended -= inside
        blended *= mask[..., None]
        blended += inside
        out = frame.copy()
        out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out

    def choose(
        self, model: MorphableModel, expression: np.ndarray, pose: np.ndarray, exclude_frames: np.ndarray | None = None, window: int = 0
    ) -> tuple[list[list[tuple[int, float]]], np.ndarray]:
        """For T drawn frames ((T, K) expressions, (T, 6) poses): the patches to mix (`select`)
        and how far `paste` shuts their eyes (`closures`). Where the clip shows no shut eye (none
        of its patches below SHUT_PATCH of the median lid gap: a clip with a shallow blink or none),
        the blinks are taken out of the keys, so open eyes are chosen by head angle, gaze and
        brows, and shut as drawn: the clip's half-shut patches, shut further, read to the face
        tracker at 0.42-0.57 of open, open ones shut at 0.28-0.31."""
        if self.closing is None:
            return self.select(self.keys_for(model, expression, pose), exclude_frames, window), np.zeros(len(expression), np.float32)
        shares = closure_shares(model, expression, self.closing_share)
        keyed = expression if self._shows_shut_eyes() else np.asarray(expression, np.float32) - shares[:, None] * self.closing
        return self.select(self.keys_for(model, keyed, pose), exclude_frames, window), shut_whole(shares)

    def _shows_shut_eyes(self) -> bool:
        openness = patch_openness(self.points, self.region())
        return bool(openness.min() <= SHUT_PATCH * np.median(openness))

    def closures(self, model: MorphableModel, expression: np.ndarray) -> np.ndarray:
        """(T,) how far the drawn eyes of T frames are shut (0 open, 1 shut), for `paste`; zeros
        where the memory keeps no blink."""
        if self.closing is None:
            return np.zeros(len(expression), np.float32)
        return shut_whole(closure_shares(model, expression, self.closing_share))

    def _shut_as_drawn(self, entry: int, shut: float) -> tuple[np.ndarray, np.ndarray]:
        """Patch `entry` and its region points, its eyes closed as far as `shut` asks where they
        are more open: the pixels' lid gap becomes (1 - shut) of the memory's typical open one,
        the points' that of the drawn eyes (which the face model closes `closing_share` at most)."""
        points = self.points[entry]
        if shut < CLOSE_FROM or self.closing is None:
            return self.patch(entry), points
        region = self.region()
        own = float(patch_openness(points[None], region)[0])
        if self._open_gap is None:
            self._open_gap = float(np.median(patch_openness(self.points, region)))
        ratio = self._open_gap / max(own, 1e-6)
        pixels = float(np.clip(1 - (1 - shut) * ratio, 0, 1))
        if pixels < CLOSE_FROM:
            return self.patch(entry), points
        drawn = float(np.clip(1 - (1 - shut * self.closing_share) * ratio, 0, 1))
        return close_lids(self.patch(entry), points, region, pixels), closed_points(points, region, drawn)

    # -- storage -----------------------------------------------------------------------------
    @classmethod
    def from_profile(cls, folder: Path) -> "RegionMemory | None":
        """The profile's memory; None for a profile made before it existed or with it damaged (a
        note says so: the region then comes from the face texture)."""
        path = Path(folder) / cls.FILE
        if not path.exists():
            return None
        try:
            return cls.load(path)
        except CacheError as error:
            progress.log(f"note: {error}; the {cls.NAME} comes from the face texture until then")
            return None

    def save(self, path: Path) -> None:
        weights = np.array(self.PART_WEIGHTS, np.float64)
        save_npz(
            path, format=np.array(self.FORMAT), jpeg=self.jpeg, offsets=self.offsets, points=self.points, frames=self.frames, keys=self.keys,
            scales=self.scales, weights=weights, **({} if self.closing is None else {"closing": self.closing, "closing_share": np.float64(self.closing_share)}),
        )

    @classmethod
    def load(cls, path: Path) -> "RegionMemory":
        arrays = load_npz(path)
        if int(arrays.get("format", -1)) != cls.FORMAT:
            raise CacheError(f"{path} is from another talkface version; run finetune again to rebuild it")
        try:
            memory = cls(*(arrays[name] for name in ("jpeg", "offsets", "points", "frames", "keys", "scales")), arrays.get("closing"), float(arrays.get("closing_share", 1.0)))
        except KeyError as error:
            raise CacheError(f"{path} is damaged (no {error}); run finetune again to rebuild it") from None
        memory.keys = _reweighted(memory.keys, arrays.get("weights", cls.LEGACY_PART_WEIGHTS), cls.PART_WEIGHTS, path)
        return memory


class EyeMemory(RegionMemory):
    """Upright patches of the clip's upper face (both eyes with lids and brows), addressed by eye
    and brow shape and head angle."""


KEY_CHUNK = 2048  # frames whose keys are made at once


def _scaled(parts: tuple[np.ndarray, ...], scales: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Each part of a key divided by its spread in the clip (so lids, brows and head angle each
    count, however much more a blink moves than a brow), then weighted."""
    return np.concatenate([weight * part / scale for part, scale, weight in zip(parts, scales, weights)], 1).astype(np.float32)


def _reweighted(keys: np.ndarray, saved, weights: tuple[float, ...], path: Path) -> np.ndarray:
    """Keys saved with the part weights `saved`, weighted by `weights` instead: the head angle
    (the last part, pitch and yaw) is rescaled in place; other parts' columns are not known here,
    so a memory whose other weights differ is rebuilt."""
    try:
        saved = np.asarray(saved, np.float64)
    except (TypeError, ValueError):
        saved = np.full(len(weights), np.nan)
    if saved.shape != (len(weights),) or not np.isfinite(saved).all() or not (saved > 0).all() or not np.allclose(saved[:-1], weights[:-1]):
        raise CacheError(f"{path} was weighted otherwise; run finetune again to rebuild it")
    if np.isclose(saved[-1], weights[-1]):
        return keys
    keys = keys.copy()
    keys[:, -2:] *= np.float32(weights[-1] / saved[-1])
    return keys


def _patch_maps(source: np.ndarray, target: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where in an upright patch with eye and brow points `source` each box pixel (`grid`, (2, H, W))
    reads from, so the patch's eyes land on the `target` eyes (a similarity fitted on the eyes) and
    its brows on the target brows (each brow moved up or down, fading to nothing at the eye line)."""
    n_eye = len(topology.eye_indices())
    inverse = cv2.invertAffineTransform(similarity_matrix(source[:n_eye], target[:n_eye]))  # box -> patch
    map_x = inverse[0, 0] * grid[0] + inverse[0, 1] * grid[1] + np.float32(inverse[0, 2])
    map_y = inverse[1, 0] * grid[0] + inverse[1, 1] * grid[1] + np.float32(inverse[1, 2])
    wanted = target[n_eye:] @ inverse[:, :2].T + inverse[:, 2]  # the target brows, in the patch
    eyes, brows = source[:n_eye], source[n_eye:]
    middle, eye_line = eyes[:, 0].mean(), eyes[:, 1].mean()
    right = brows[:, 0] < middle
    shifts = [float((wanted[side, 1] - brows[side, 1]).mean()) if side.any() else 0.0 for side in (right, ~right)]
    rise = max(eye_line - brows[:, 1].mean(), 1.0)
    width = max(np.ptp(eyes[:, 0]) * 0.15, 1.0)  # the two brows' shifts blend across the nose
    towards_brow = np.clip((eye_line - map_y) / rise, 0, 1)
    left_share = np.clip((map_x - middle) / width * 0.5 + 0.5, 0, 1)
    map_y -= towards_brow * (shifts[0] + left_share * (shifts[1] - shifts[0]))
    return map_x.astype(np.float32), map_y.astype(np.float32)  # float64 under NumPy 2 (a float64 scalar times float32), which remap refuses


def _mask(points: np.ndarray, size: tuple[int, int], distance: float) -> np.ndarray:
    """(H, W) float32 soft mask over both eyes and brows (each side's hull, grown, softened)."""
    n_eye = len(topology.eye_indices())
    eyes, brows = points[:n_eye], points[n_eye:]
    centre_x = points[:, 0].mean()
    groups = [np.concatenate([eyes[side(eyes[:, 0], centre_x)], brows[side(brows[:, 0], centre_x)]]) for side in (np.less, np.greater_equal)]
    return soft_hulls(groups, size, MASK_GROW * distance, MASK_SOFTNESS * distance)


def soft_hulls(groups: list[np.ndarray], size: tuple[int, int], grow: float, softness: float) -> np.ndarray:
    """(H, W) float32 mask of the convex hulls of point `groups` (pixels), grown by `grow` px and
    faded over `softness` px.

    Made at 1 / MASK_SCALE of the resolution and enlarged: it is smooth, and a quarter costs a
    sixteenth."""
    small = (max(1, -(-size[0] // MASK_SCALE)), max(1, -(-size[1] // MASK_SCALE)))
    mask = np.zeros((small[1], small[0]), np.uint8)
    for group in groups:
        if len(group) >= 3:
            scaled = (group + 0.5) / MASK_SCALE - 0.5
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(scaled * 4).astype(np.int32)), 1, cv2.LINE_8, 2)
    radius = max(1, int(round(grow / MASK_SCALE)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(softness / MASK_SCALE, 0.5))
    return cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
