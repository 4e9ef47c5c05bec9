"""How much of a head turn the picture shows, measured on the person's own clip at finetune.

When the motion turns the head further than the chosen background frame's head, `speak` turns
that whole head with the head warp (render/headwarp.py) and draws the face at the motion's angle.
What a viewer sees of the turn (Face Mesh on the picture, fitted in the person's model) is less
than the drawn face's angle: the head's outline, hair and jaw line weigh as much as the face
inside them, and the warp moves them less than a real head's. How much less depends on the
person (hair over one side, a wide jaw). Measured on three corpus people, the face and the head
both turned 5 degrees read 0.47-0.94 of it (one of them 0.80 to one side and 0.47 to the other);
the face turned alone read 0.2-0.4.

So finetune measures it (`measure_turn_gain`): CALIBRATION_FRAMES clip frames near the clip's
usual pose, each made as `speak` makes a turned frame (head warped, face composited), with the
face turned CALIBRATION_DEGREES of pitch or yaw either way and the head turned once and twice
that, and Face Mesh fitted in the person's model on each. What the picture reads grows about in
a straight line with the head's turn, so the head's turn that reads the face's angle is found
from the two (`_gain`) and kept within GAIN_RANGE: background.follow_turn asks it per axis and
side. Roll, a turn within the picture, shows whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.config import TrackConfig
from talkface.errors import CacheError, MultipleFacesError, NoFaceError
from talkface.face.fit import fit_clip
from talkface.face.model import MeshFaceModel, place_vertices
from talkface.face.tracker import FaceMeshTracker, TrackBuilder
from talkface.render.background import TURN_GAIN
from talkface.storage import read_json_object, write_json

FORMAT = 4  # turn_gain.json (2: the head's turn found from two head turns per face turn; 3: up to 3x; 4: through the stretch-capped warp)
READABLE = (2, 3, 4)  # formats load_turn_gain takes (a format-2 record's gains lie within 1-2x)
FILE = "turn_gain.json"
CALIBRATION_DEGREES = 5.0  # the turns measured, each way (the largest a follow turn asks is 10)
CALIBRATION_FRAMES = 10  # clip frames they are measured on
MIN_MEASURED = 5  # frames Face Mesh must read at every turn for a side's figure to count
# what a turn may be asked, per degree lacking: the vlogger's pitch down read 0.67 of the face's turn
# with the head turned as far, 0.85 twice as far (2.8x reads it whole); capped at 2, her pitch spread in
# the video was 0.79 of the motion's. The turn itself stays within FOLLOW_TURN_DEGREES (background.py)
GAIN_RANGE = (1.0, 3.0)
HEAD_TURNS = (1.0, 2.0)  # the head turned these times the face's turn, at calibration
MIN_SLOPE = 0.1  # the reading must grow this much per face turn of the head's (else the default gain)
DEFAULT_GAIN = tuple(TURN_GAIN.tolist())  # (pitch, yaw, roll) where nothing was measured: a profile made before, a photo
AXES = ("pitch", "yaw")


@dataclass(frozen=True)
class TurnGain:
    """Per degree lacking, what the background's head is turned: (3,) for (pitch, yaw, roll),
    for turns in the positive and in the negative direction."""

    positive: np.ndarray
    negative: np.ndarray

    @classmethod
    def default(cls) -> "TurnGain":
        return cls(np.array(DEFAULT_GAIN), np.array(DEFAULT_GAIN))

    def of(self, residual: np.ndarray) -> np.ndarray:
        """The gain for each of `residual`'s (T, 3) angles, by its sign."""
        return np.where(residual >= 0, self.positive, self.negative)


def measure_turn_gain(
    face: MeshFaceModel, pose: np.ndarray, expression: np.ndarray, valid: np.ndarray, frames, mattes, advance=lambda n=1: None, plate=None
) -> dict:
    """The record `save_turn_gain` writes: the share of CALIBRATION_DEGREES turns Face Mesh reads
    on this person's turned frames, per axis and side, and the gains made from it.

    `pose`, `expression`, `valid`: the clip's fit; `frames`: its stored frames (FrameStore);
    `mattes`: their person mattes (MatteStore, or None to make them); `advance()` is called after each frame;
    `plate`: the clip's room plate (render/room.py), as `speak` will use it."""
    from talkface.render.composite import FaceCompositor
    from talkface.render.headwarp import HeadWarper

    pose = pose.astype(np.float64)
    rows = np.flatnonzero(valid)
    usual = np.median(pose[rows, :3], 0)
    near = rows[np.argsort(np.abs(pose[rows, :3] - usual).sum(1))]
    chosen = np.sort(near[:: max(1, len(near) // (4 * CALIBRATION_FRAMES))][:CALIBRATION_FRAMES])
    step = np.radians(CALIBRATION_DEGREES)
    # (face's turn, head's turn) in radians: as it is, then per axis and side, the head turned HEAD_TURNS times the face
    turns = [(np.zeros(3), np.zeros(3))] + [
        (sign * step * np.eye(3)[axis], times * sign * step * np.eye(3)[axis]) for axis in range(len(AXES)) for sign in (1, -1) for times in HEAD_TURNS
    ]
    compositor = FaceCompositor(face, "cpu")
    builder = TrackBuilder(TrackConfig(smoothing_window=1))
    with HeadWarper(face=face.mean_shape, mattes=mattes, plate=plate) as warper, FaceMeshTracker() as tracker:
        for index in chosen:
            frame = frames[int(index)]
            own = place_vertices(face, expression[index], pose[index])
            for face_turn, head_turn in turns:
                background = warper(frame, int(index), pose[index], pose[index] + np.r_[head_turn, np.zeros(3)])
                drawn = place_vertices(face, expression[index], pose[index] + np.r_[face_turn, np.zeros(3)])
                picture, _, _ = compositor.composite_keeping(background, drawn, own, frame)
                builder.add(tracker.process(picture))
            advance(1)
    height, width = frames[int(chosen[0])].shape[:2]
    shown, positive, negative = {}, list(DEFAULT_GAIN), list(DEFAULT_GAIN)
    try:
        tracked = builder.finish("the clip's turned frames", 25.0, width, height)
    except (NoFaceError, MultipleFacesError):  # Face Mesh read nothing usable: the turns are asked as before
        return {"format": FORMAT, "degrees": CALIBRATION_DEGREES, "head_turns": list(HEAD_TURNS), "frames": chosen.tolist(),
                "shown": None, "positive": positive, "negative": negative}
    seen = np.degrees(fit_clip(face, tracked).pose[:, :3].astype(np.float64)).reshape(len(chosen), len(turns), 3)
    column = 1
    for axis, name in enumerate(AXES):
        for sign, gains in ((1, positive), (-1, negative)):
            key = f"{name}{'+' if sign > 0 else '-'}"
            reads = []  # the share of the face's turn the picture reads, head turned once and twice as far
            for _ in HEAD_TURNS:
                share = sign * (seen[:, column, axis] - seen[:, 0, axis]) / CALIBRATION_DEGREES
                share = share[np.isfinite(share)]
                reads.append(float(np.median(share)) if len(share) >= MIN_MEASURED else None)
                column += 1
            shown[key] = [None if r is None else round(r, 3) for r in reads]
            if None not in reads:
                gains[axis] = _gain(*reads, DEFAULT_GAIN[axis])
    return {"format": FORMAT, "degrees": CALIBRATION_DEGREES, "head_turns": list(HEAD_TURNS), "frames": chosen.tolist(), "shown": shown,
            "positive": [round(g, 3) for g in positive], "negative": [round(g, 3) for g in negative]}


def _gain(once: float, twice: float, default: float) -> float:
    """The head's turn, in face turns, at which the picture reads the face's turn: on the line
    through what it read with the head turned once (`once`) and twice (`twice`) as far as the face.
    `default` where the head's turn barely changes the reading (turning it further would not help)."""
    slope = (twice - once) / (HEAD_TURNS[1] - HEAD_TURNS[0])
    if slope < MIN_SLOPE:
        return default
    return float(np.clip(HEAD_TURNS[0] + (1 - once) / slope, *GAIN_RANGE))


def save_turn_gain(folder: Path, record: dict) -> None:
    write_json(Path(folder) / FILE, record)


def load_turn_gain(folder: Path) -> TurnGain:
    """The profile's measured gains, or the default where it has none (made before they were
    measured, a photo) or the file is damaged (CacheError is not raised: turns are then as before)."""
    path = Path(folder) / FILE
    if not path.exists():
        return TurnGain.default()
    try:
        record = read_json_object(path)
        if record.get("format") not in READABLE:
            raise CacheError(f"{path} has another format")
        gains = [np.asarray(record[side], np.float64) for side in ("positive", "negative")]
        if any(g.shape != (3,) or not np.isfinite(g).all() or (g < GAIN_RANGE[0]).any() or (g > GAIN_RANGE[1]).any() for g in gains):
            raise CacheError(f"{path} holds impossible gains")
    except (CacheError, KeyError, TypeError, ValueError, OSError):
        return TurnGain.default()
    return TurnGain(*gains)
