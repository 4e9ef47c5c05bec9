"""Choose the generic open mouth shipped as talkface/weights/generic_mouth.safetensors.

Usage:
    python scripts/generic_face.py        # once: every clip's fit (out/corpus_faces)
    python scripts/generic_mouth.py [--min-scale 90] [--sheet out/oneshot/mouths.jpg]

A photo with a closed mouth shows no teeth; its profile borrows these. Among the corpus clips
whose face is large (scale >= --min-scale pixels per model unit), the frames with the mouth
most open and the head near frontal are scored by how bright the upper half of the opening is
against the face (teeth show), and the best frame's mouth region and its landmarks are kept,
with the clip it came from. The candidates are written to a contact sheet to look at.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS, VIDEOS, sources  # noqa: E402

from talkface.face import topology  # noqa: E402
from talkface.face.geometry import apply_pose  # noqa: E402
from talkface.media import read_frames_at  # noqa: E402
from talkface.render.composite import INNER_LIPS  # noqa: E402
from talkface.render.mouth import GENERIC_MOUTH_PATH, GenericMouth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAMES_PER_CLIP = 6  # the most open frames of each clip that are scored
MAX_YAW_DEG = 8.0
MARGIN = 0.35  # the crop reaches this many mouth widths around the lips


def candidates(face: dict, video: Path) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(score, crop RGB, landmarks in the crop) for the clip's most open near-frontal frames."""
    valid = face["valid"] & (np.abs(np.degrees(face["pose"][:, 1])) < MAX_YAW_DEG)
    shapes = face["mean_shape"][None].astype(np.float64) + face["offsets"].astype(np.float64)
    points = np.full(shapes.shape, np.nan)
    points[valid] = apply_pose(shapes[valid], face["pose"][valid].astype(np.float64))
    opening = np.where(valid, topology.gap_ratio(np.nan_to_num(points), topology.UPPER_INNER_LIP, topology.LOWER_INNER_LIP,
                                                 topology.MOUTH_LEFT, topology.MOUTH_RIGHT), -1)
    chosen = [int(i) for i in np.argsort(opening)[::-1][:FRAMES_PER_CLIP] if opening[i] > 0.25]
    frames = read_frames_at(video, chosen) if chosen else {}
    found = []
    for index in chosen:
        frame, landmarks = frames[index], points[index]
        width = np.linalg.norm(landmarks[topology.MOUTH_RIGHT, :2] - landmarks[topology.MOUTH_LEFT, :2])
        lips = landmarks[topology.lip_indices(), :2]
        x0, y0 = np.floor(lips.min(0) - MARGIN * width).astype(int).clip(0)
        x1, y1 = np.ceil(lips.max(0) + MARGIN * width).astype(int)
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        local = landmarks.copy()
        local[:, :2] -= [x0, y0]
        inside = np.zeros(crop.shape[:2], np.uint8)
        cv2.fillPoly(inside, [np.round(local[list(INNER_LIPS), :2]).astype(np.int32)], 1)
        middle = (local[topology.UPPER_INNER_LIP, 1] + local[topology.LOWER_INNER_LIP, 1]) / 2
        upper = inside.copy()
        upper[int(middle):] = 0
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        skin = np.median(grey[inside == 0])
        if upper.sum() < 30:
            continue
        found.append((float(grey[upper > 0].mean() / max(skin, 1.0)), crop, local.astype(np.float32)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=ROOT / "out" / "corpus_faces", help="scripts/generic_face.py's output")
    parser.add_argument("--min-scale", type=float, default=90.0)
    parser.add_argument("--sheet", type=Path, default=ROOT / "out" / "oneshot" / "mouths.jpg")
    args = parser.parse_args()
    found = []
    for path in sorted(args.faces.glob("*.npz")):
        face = dict(np.load(path))
        face["valid"] = face["valid"].astype(bool)
        if np.nanmedian(face["pose"][face["valid"], 5]) < args.min_scale:
            continue
        video = CORPUS / str(face["video"]) if (CORPUS / str(face["video"])).exists() else VIDEOS / str(face["video"])
        for score, crop, landmarks in candidates(face, video):
            found.append((score, crop, landmarks, path.stem, str(face["video_sha256"])))
    found.sort(key=lambda item: -item[0])
    tiles = [cv2.resize(item[1], (160, int(160 * item[1].shape[0] / item[1].shape[1]))) for item in found[:12]]
    height = max(t.shape[0] for t in tiles)
    sheet = np.hstack([np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles])
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.sheet), sheet[..., ::-1])
    for score, _, _, name, _ in found[:12]:
        print(f"{score:.2f} {name}")
    score, crop, landmarks, name, sha = found[0]
    source = sources().get(name, "../shared/data/video (see shared/data/SOURCES.md)")
    meta = {"made": time.strftime("%Y-%m-%d"), "command": "python scripts/generic_mouth.py " + " ".join(sys.argv[1:]),
            "clip": name, "sha256": sha, "source": source, "score": round(score, 3)}
    GenericMouth(crop, landmarks, meta).save(GENERIC_MOUTH_PATH)
    GENERIC_MOUTH_PATH.with_suffix(".md").write_text(
        "# generic_mouth.safetensors\n\nThe open mouth (teeth) that photo profiles with a closed mouth borrow "
        "(`talkface/render/mouth.py`). Made with:\n\n"
        f"    {meta['command']}\n\nOne frame's mouth region ({crop.shape[1]}x{crop.shape[0]} px) and its landmarks, chosen {meta['made']} "
        f"(score {meta['score']}: the upper opening's brightness over the face's) from the clip {name} "
        f"(sha256 {sha[:16]}...): {source}.\n"
    )
    print(f"wrote {GENERIC_MOUTH_PATH} from {name} ({crop.shape[1]}x{crop.shape[0]} px): {json.dumps(meta)}")


if __name__ == "__main__":
    main()
