"""The room behind the person, seen over the whole clip: what a turned head uncovers is taken from it.

A turned head (render/headwarp.py) uncovers room its frame never showed. Filled from the room
around the gap (`headwarp.fill_from_room`), a textured wall or a railing came out as a grey smear
beside the head, and the old head's soft rim, counted as room, showed as a second, lighter outline
(a ghost). But as the person moves through the clip, most of the room right behind their head's
edge shows in some other frame. `build_room_plate` takes, at finetune, the per-pixel median of the
room over PLATE_FRAMES frames spread through the clip (only where each frame's person matte says
room), and where the camera held still (each frame's room within STILL_LEVELS of that median in
most frames) stores it with where it was seen (`room.npz`); the room no frame showed is filled once
from around it. The warp then puts the plate, brought to the frame's exposure, wherever the frame's
own person and rim were.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talkface.errors import CacheError
from talkface.render.headwarp import MIRROR_REACH, fill_from_room
from talkface.storage import load_npz, save_npz

FORMAT = 2  # room.npz; 2: the unseen room near the seen mirrored in (a finetune again makes it)
READABLE = (1, 2)  # formats still read (1: the unseen room filled flat)
FILE = "room.npz"
PLATE_FRAMES = 48  # clip frames the plate is the median of
PLATE_BYTES = 256 * 2**20  # at most this many bytes of frames are held for it (fewer frames for large ones)
MIN_PLATE_FRAMES = 12
ROOM_BELOW = 0.05  # a pixel whose person matte is below this shows the room
MIN_SEEN = 3  # frames a pixel must show the room in to be on the plate
STILL_LEVELS = 8.0  # median |frame - plate| (grey levels) over the room a frame shows, for a still camera
STILL_SHARE = 0.75  # the share of frames that must be that close for the plate to be kept
ROWS = 64  # rows of the plate made at a time (bounded memory: 48 frames x 64 rows x the width)


@dataclass(frozen=True)
class RoomPlate:
    """The room without the person: `image` (H, W, 3) uint8 RGB, where the clip showed it
    (`seen`, (H, W) bool) its median there, elsewhere filled from around it."""

    image: np.ndarray
    seen: np.ndarray


def build_room_plate(frames, mattes, mirror: int = MIRROR_REACH) -> tuple[RoomPlate | None, dict]:
    """The plate of a clip's stored `frames` (FrameStore) and `mattes` (MatteStore), or None where
    the camera moved (or the room changed) through the clip; and a record of what was found.
    The room no frame showed is filled from around it, within `mirror` px of what was seen with the
    room mirrored into it (headwarp.mirror_room): filled flat, the band a turned head uncovered there
    showed as a pale strip whose edge doubled the head's outline."""
    count = len(frames)
    height, width = frames[0].shape[:2]
    most = int(np.clip(PLATE_BYTES // (height * width * 3), MIN_PLATE_FRAMES, PLATE_FRAMES))  # a 4K clip: 12 frames, 300 MB
    chosen = np.unique(np.linspace(0, count - 1, min(most, count)).round().astype(int))
    images = np.stack([frames[int(i)] for i in chosen])
    room = np.stack([mattes[int(i)] < ROOM_BELOW for i in chosen])
    plate = np.zeros((height, width, 3), np.uint8)
    seen_count = room.sum(0)
    for top in range(0, height, ROWS):
        block = images[:, top : top + ROWS].astype(np.float32)
        block[~room[:, top : top + ROWS]] = np.nan
        with warnings.catch_warnings():  # 'All-NaN slice': a pixel the person covers in every frame
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(block, axis=0)
        plate[top : top + ROWS] = np.clip(np.nan_to_num(median) + 0.5, 0, 255).astype(np.uint8)
    seen = seen_count >= MIN_SEEN
    apart = []  # each frame's median distance from the plate over the room it shows
    for image, shows in zip(images, room):
        where = shows & seen
        if where.sum() < 100:
            continue
        apart.append(float(np.median(np.abs(image[where].astype(np.int16) - plate[where]).mean(1))))
    still = bool(apart) and float(np.mean(np.array(apart) <= STILL_LEVELS)) >= STILL_SHARE
    record = {"frames": len(chosen), "seen_share": round(float(seen.mean()), 3), "median_apart_levels": round(float(np.median(apart)), 2) if apart else None,
              "still_camera": still}
    if not still:
        return None, record
    # the room no frame showed (behind the person all along) filled once from around it, so the
    # warp never fills a gap per frame (19 ms a turned 900x900 frame)
    return RoomPlate(fill_from_room(plate, ~seen, seen, mirror), seen), record


def save_room_plate(path: Path, plate: RoomPlate | None, record: dict) -> None:
    """room.npz: the plate (PNG) and where it was seen, or only the record where there is none."""
    arrays = {"format": np.array(FORMAT), "still": np.array(plate is not None)}
    if plate is not None:
        arrays["image"] = cv2.imencode(".png", plate.image[..., ::-1])[1]
        arrays["seen"] = np.packbits(plate.seen, axis=None)
        arrays["shape"] = np.array(plate.seen.shape)
    arrays["apart"] = np.array(np.nan if record.get("median_apart_levels") is None else record["median_apart_levels"])
    save_npz(path, **arrays)


def load_room_plate(folder: Path, size: tuple[int, int]) -> RoomPlate | None:
    """The profile's plate for frames of `size` (width, height), or None: none stored (a profile
    made before, a moving camera) or a damaged file (the warp then fills from around the gap)."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        arrays = load_npz(path)
        if int(arrays["format"]) not in READABLE or not bool(arrays["still"]):
            return None
        shape = tuple(int(v) for v in arrays["shape"])
        image = cv2.imdecode(arrays["image"], cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != shape or shape != (size[1], size[0]):
            return None
        seen = np.unpackbits(arrays["seen"], count=shape[0] * shape[1]).reshape(shape).astype(bool)
    except (CacheError, KeyError, ValueError, TypeError, cv2.error):
        return None
    return RoomPlate(image[..., ::-1].copy(), seen)

