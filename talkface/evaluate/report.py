"""Pictures that show what the numbers say: a contact sheet and a time plot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from talkface.config import FPS
from talkface.evaluate import metrics
from talkface.evaluate.scan import Scan
from talkface.face import topology
from talkface.face.model import FaceFit

TILE_HEIGHT = 240  # px: height of each frame in the contact sheet
MOUTH_TILE = 120  # px: side of each enlarged mouth crop


def _label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    for colour, weight in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, weight, cv2.LINE_AA)
    return out


def _tile(frame: np.ndarray, face, label: str, width: int) -> np.ndarray:
    scale = TILE_HEIGHT / frame.shape[0]
    picture = cv2.resize(frame, (int(round(frame.shape[1] * scale)), TILE_HEIGHT), interpolation=cv2.INTER_AREA)
    picture = _pad_width(_label(picture, label), width)
    if face is None:
        mouth = np.zeros((MOUTH_TILE, MOUTH_TILE, 3), np.uint8)
    else:
        mouth = metrics.mouth_crop(frame, face, MOUTH_TILE)
    return np.concatenate([picture, _pad_width(mouth, width)], axis=0)


def _pad_width(image: np.ndarray, width: int) -> np.ndarray:
    extra = width - image.shape[1]
    return np.pad(image, ((0, 0), (extra // 2, extra - extra // 2), (0, 0))) if extra > 0 else image[:, :width]


def contact_sheet(result: Scan) -> np.ndarray:
    """Columns at regular times; rows: reference frame + mouth, generated frame + mouth."""
    names = ["reference", "generated"] if result.reference is not None else ["generated"]
    any_frame = next(iter(result.sheet.values()))["generated"]
    width = max(int(round(any_frame.shape[1] * TILE_HEIGHT / any_frame.shape[0])), MOUTH_TILE)
    columns = []
    for index in sorted(result.sheet):
        entry = result.sheet[index]
        column = [_tile(entry[name], entry[f"{name}_face"], f"{name[:3]} {index / FPS:.1f}s", width) for name in names]
        columns.append(np.concatenate(column, axis=0))
    gap = np.full((columns[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([c for column in columns for c in (column, gap)][:-1], axis=1)


def write_report(folder: Path, result: Scan, fits: dict[str, FaceFit]) -> Path:
    """Write contact_sheet.png and curves.png into `folder`; returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "contact_sheet.png"), contact_sheet(result)[..., ::-1])
    tracks = {"generated": result.generated}
    if result.reference is not None:
        tracks["reference"] = result.reference
    figure, (mouth_axis, yaw_axis) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    for name, track in tracks.items():
        seconds = np.arange(track.n_frames) / FPS
        style = {"reference": dict(color="black", lw=1.2), "generated": dict(color="tab:red", lw=1.0, alpha=0.85)}[name]
        mouth_axis.plot(seconds, topology.mouth_openness(track.raw_landmarks), label=name, **style)
        yaw_axis.plot(seconds, np.degrees(fits[name].pose[:, 1]), label=name, **style)
    mouth_axis.set_ylabel("mouth opening\n(lip gap / width)")
    yaw_axis.set_ylabel("head yaw (°)")
    yaw_axis.set_xlabel("time (s)")
    mouth_axis.legend(loc="upper right")
    mouth_axis.grid(alpha=0.3)
    yaw_axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / "curves.png", dpi=100)
    plt.close(figure)
    return folder
