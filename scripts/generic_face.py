"""Build the generic face kit shipped as talkface/weights/generic_face.safetensors.

Usage:
    python scripts/corpus.py            # once: features and lips of every clip (out/corpus)
    python scripts/generic_face.py [--exclude barack_obama ...] [--no-ship]

A photo profile (`talkface finetune --image`) has one frame: no expression basis, no head
motion and no blinks of its own. This script learns them across the corpus's people:

1. Tracks every clip (cached in out/corpus_faces/), builds each person's face model and keeps
   each frame's expression as vertex offsets in that person's own frontal frame (RMS radius 1).
2. The shared expression basis: principal components of those offsets, every clip weighted
   alike (at most FRAMES_PER_CLIP frames each).
3. Blinks: each clip's expression projected onto the shared basis, its blinks measured there
   (talkface.motion.blinks); the profile is the average over clips with blinks, the rate the median.
4. Head motion: the pose model (audio part + AR(2) habits, talkface.motion.pose) fitted on
   every clip's pose standardised by the clip's own mean and spread; the spread kept apart
   (angles in radians, shifts and scale relative to the face's size), median over clips; how
   much more the head moves on loud speech, fitted per clip, median over clips.
5. The closed mouth in the generic lip space (the mean lip offset in each clip's most closed
   frames): a photo's mouth is closed, a clip's mean mouth is not.

Takes ~10 minutes on 2 CPU cores (mostly tracking; cached after the first run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import clips as corpus_clips, digest, sources  # noqa: E402

from talkface.audio import loudness_columns  # noqa: E402
from talkface.config import FPS  # noqa: E402
from talkface.face.fit import build_model  # noqa: E402
from talkface.face.model import FaceFit, MeshFaceModel, project_landmarks  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.motion.blinks import BlinkModel  # noqa: E402
from talkface.motion.genericface import GENERIC_FACE_PATH, GenericFace  # noqa: E402
from talkface.motion.pose import PoseModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAMES_PER_CLIP = 300  # frames of each clip that teach the basis, so long clips do not dominate
N_COMPONENTS = 32  # the basis size (talkface's per-person models keep 32 too)
CLOSED_QUANTILE = 0.1  # a clip's most closed frames: this fraction of the smallest openings
FORMAT = 1


def prepare(clip: dict, out: Path) -> Path:
    """Track one clip and keep its per-frame expression offsets (cached)."""
    target = out / f"{clip['video'].stem}.npz"
    if target.exists():
        return target
    track = track_video(clip["video"])
    model, fit = build_model(track)
    expression = np.nan_to_num(fit.expression).astype(np.float64)
    offsets = np.einsum("tk,kvc->tvc", expression, model.expression_basis.astype(np.float64))
    np.savez_compressed(
        target, format=FORMAT, mean_shape=model.mean_shape, offsets=offsets.astype(np.float16), pose=fit.pose,
        valid=fit.valid, person=clip["person"], video=clip["video"].name, video_sha256=digest(clip["video"]),
    )
    return target


def shared_basis(faces: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(K, V, 3) orthonormal directions and (K,) their spread, every clip weighted alike."""
    rng = np.random.default_rng(0)
    rows = []
    for face in faces:
        usable = np.flatnonzero(face["valid"])
        chosen = rng.choice(usable, min(FRAMES_PER_CLIP, len(usable)), replace=False)
        rows.append(face["offsets"][chosen].reshape(len(chosen), -1).astype(np.float64))
    data = np.concatenate(rows)
    data -= data.mean(0)
    _, singular, components = np.linalg.svd(data, full_matrices=False)
    spread = singular[:N_COMPONENTS] / np.sqrt(len(data))
    explained = float((singular[:N_COMPONENTS] ** 2).sum() / (singular**2).sum())
    print(f"shared basis: {N_COMPONENTS} components explain {explained:.1%} of {len(data)} frames from {len(faces)} clips")
    return components[:N_COMPONENTS].reshape(N_COMPONENTS, -1, 3).astype(np.float32), spread.astype(np.float32)


def blink_style(faces: list[dict], basis: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Median blink rate, the mean blink profile in the shared basis, and clips with blinks."""
    flat = basis.reshape(len(basis), -1).astype(np.float64)
    rates, profiles = [], []
    for face in faces:
        valid = face["valid"]
        expression = np.full((len(valid), len(basis)), np.nan)
        expression[valid] = face["offsets"][valid].reshape(int(valid.sum()), -1).astype(np.float64) @ flat.T
        model = MeshFaceModel(face["mean_shape"], basis, np.ones(len(basis), np.float32), np.zeros((0, 3), np.int32),
                              np.zeros((len(face["mean_shape"]), 2), np.float32), np.zeros((1, 1, 3), np.uint8))
        landmarks = project_landmarks(model, FaceFit(face["pose"], np.nan_to_num(expression).astype(np.float32)))
        blinks = BlinkModel.fit(expression, landmarks, FPS, model)
        rates.append(blinks.per_minute)
        if blinks.profile.any():
            profiles.append(blinks.profile)
    return float(np.median(rates)), np.mean(profiles, axis=0).astype(np.float32), len(profiles)


def head_style(faces: list[dict], lips_folder: Path) -> tuple[PoseModel, np.ndarray]:
    """The pose model on every clip's standardised pose, and (6,) the median spread: angles in
    radians, shifts and scale as fractions of the face's scale (pixels per model unit).

    The head's restlessness follows the speech's loudness as each clip's does: the coupling
    (and the loudness statistics it is measured in) is fitted clip by clip, where a recording's
    own level cannot pass for emphasis, and the median kept."""
    features, targets, valid, spreads, couplings = [], [], [], [], []
    columns = loudness_columns("mfcc+whisper")
    for face in faces:
        lips = np.load(lips_folder / f"{Path(str(face['video'])).stem}.npz")
        pose, ok = face["pose"].astype(np.float64), face["valid"]
        if ok.sum() < 50:
            continue
        mean, std = pose[ok].mean(0), pose[ok].std(0) + 1e-6
        scale = mean[5]
        spreads.append(np.concatenate([std[:3], std[3:] / scale]))
        features.append(np.concatenate([lips["mfcc"], lips["whisper"]], axis=1).astype(np.float32))
        targets.append(np.where(ok[:, None], (pose - mean) / std, 0.0))
        valid.append(ok)
        own = PoseModel.fit(features[-1], targets[-1], ok, columns)
        couplings.append((own.loudness_mean, own.loudness_std, *own.coupling))
    model = PoseModel.fit(np.concatenate(features), np.concatenate(targets), np.concatenate(valid))
    loudness_mean, loudness_std, *coupling = np.median(couplings, axis=0)
    model = replace(model, loudness_columns=np.asarray(columns, np.int64), loudness_mean=float(loudness_mean),
                    loudness_std=float(loudness_std), coupling=np.asarray(coupling, np.float32))
    print("head motion's loudness coupling (median over clips, pitch/yaw/roll/x/y/scale):", np.round(coupling, 2).tolist())
    return model, np.median(spreads, axis=0).astype(np.float32)


def closed_lips(lips_folder: Path, names: list[str]) -> np.ndarray:
    """(120,) the mean lip offset of each clip's most closed frames, averaged over clips."""
    closed = []
    for name in names:
        data = np.load(lips_folder / f"{name}.npz")
        valid = data["valid"].astype(bool)
        opening = np.where(valid, data["opening"], np.inf)
        count = max(1, int(CLOSED_QUANTILE * valid.sum()))
        closed.append(data["lips"][np.argsort(opening)[:count]].mean(0))
    return np.mean(closed, axis=0).astype(np.float32)


def write_record(kit: GenericFace, path: Path) -> None:
    """The human-readable record beside the weights: command, numbers, clips, sources, licences."""
    meta, found = kit.meta, sources()
    spread = np.concatenate([np.degrees(kit.pose_spread[:3]), kit.pose_spread[3:]])
    lines = [
        "# generic_face.safetensors", "",
        "The generic face kit of photo profiles (`talkface/motion/genericface.py`, used by `finetune --image`). Made with:", "",
        f"    {meta['command']}", "",
        f"Made {meta['trained']} from {len(meta['clips'])} clips; people left out: {', '.join(meta['excluded_people'])}. "
        f"{len(kit.basis)} shared expression components; blinks {kit.blinks_per_minute:.1f} per minute (median; shape from "
        f"{meta['clips_with_blinks']} clips); head spread pitch/yaw/roll {spread[0]:.1f}/{spread[1]:.1f}/{spread[2]:.1f} degrees (median); "
        f"head motion's shock variance per standard deviation of loudness, pitch/yaw/roll "
        f"{'/'.join(f'{c:.2f}' for c in kit.pose.coupling[:3])} (median over clips).", "",
        "| clip | person | sha256 | source (licence) |", "|---|---|---|---|",
    ]
    for clip in meta["clips"]:
        source = found.get(Path(clip["file"]).stem, "../shared/data/video (see shared/data/SOURCES.md)")
        lines.append(f"| {Path(clip['file']).stem} | {clip['person']} | {clip['sha256'][:16]}... | {source} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "corpus_faces")
    parser.add_argument("--lips", type=Path, default=ROOT / "out" / "corpus", help="scripts/corpus.py's output")
    parser.add_argument("--exclude", nargs="*", default=["barack_obama"], help="people left out (the one-shot benchmark's)")
    parser.add_argument("--no-ship", action="store_true", help="print the summary, do not write the weights file")
    parser.add_argument("--record", action="store_true", help="only rewrite generic_face.md from the shipped file")
    args = parser.parse_args()
    if args.record:
        write_record(GenericFace.load(), GENERIC_FACE_PATH.with_suffix(".md"))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    faces, used = [], []
    for clip in corpus_clips():
        if clip["person"] in args.exclude or not (args.lips / f"{clip['video'].stem}.npz").exists():
            continue
        t0 = time.perf_counter()
        try:
            path = prepare(clip, args.out)
        except Exception as exc:  # a clip the tracker cannot use is reported and left out
            print(f"{clip['video'].name}: SKIPPED: {type(exc).__name__}: {exc}", flush=True)
            continue
        data = dict(np.load(path))
        data["valid"] = data["valid"].astype(bool)
        faces.append(data)
        used.append({"file": clip["video"].name, "person": clip["person"], "sha256": str(data["video_sha256"])})
        print(f"{clip['video'].name}: {int(data['valid'].sum())} frames ({time.perf_counter() - t0:.0f} s)", flush=True)
    basis, spread = shared_basis(faces)
    rate, profile, with_blinks = blink_style(faces, basis)
    print(f"blinks: median {rate:.1f} per minute; profile from {with_blinks} clips")
    pose, pose_spread = head_style(faces, args.lips)
    print("head spread (deg pitch/yaw/roll; shift x/y, scale relative):",
          np.round(np.concatenate([np.degrees(pose_spread[:3]), pose_spread[3:]]), 3).tolist())
    closed = closed_lips(args.lips, [Path(u["file"]).stem for u in used])
    meta = {
        "trained": time.strftime("%Y-%m-%d"),
        "command": "python scripts/corpus.py && python scripts/generic_face.py " + " ".join(sys.argv[1:]),
        "excluded_people": args.exclude,
        "clips": used,
        "blinks_per_minute": round(rate, 2),
        "clips_with_blinks": with_blinks,
    }
    kit = GenericFace(basis, spread, rate, profile, pose, pose_spread, closed, meta)
    if not args.no_ship:
        kit.save(GENERIC_FACE_PATH)
        write_record(kit, GENERIC_FACE_PATH.with_suffix(".md"))
        print(f"wrote {GENERIC_FACE_PATH} ({GENERIC_FACE_PATH.stat().st_size / 1e3:.0f} kB)")
    print(json.dumps({k: v for k, v in meta.items() if k != "clips"}), f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
