"""Train the generic audio->lip prior shipped in talkface/weights/ from several people's clips.

Usage: python scripts/train_prior.py [--exclude NAME ...] [VIDEOS ...]
Default: every video in ../shared/data/video except congressman_d_60s.mp4, which the
motion benchmark evaluates on. Writes talkface/weights/motion_prior_<features>.npz for each feature
set, with the clip list, penalty and cross-validated score recorded inside.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkface.audio import FEATURE_SETS, extract  # noqa: E402
from talkface.face.fit import build_model  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.media import load_audio  # noqa: E402
from talkface.motion.prior import MotionPrior, lip_offsets, prior_path  # noqa: E402
from talkface.motion.ridge import Ridge, stack_context  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = ROOT.parent / "shared" / "data" / "video"
RADIUS = 5  # frames of audio context either side
ALPHAS = (1e3, 3e3, 1e4, 3e4, 1e5)
HELD_OUT = "congressman_d_60s.mp4"


def clip_data(video: Path) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(valid mask, features per set, lip offsets) for one clip."""
    track = track_video(video)
    model, fit = build_model(track)
    audio = load_audio(video)
    features = {name: extract(audio, name, track.n_frames) for name in FEATURE_SETS}
    return fit.valid, features, lip_offsets(model, np.nan_to_num(fit.expression))


def leave_one_clip_out(xs: list[np.ndarray], ys: list[np.ndarray], alpha: float) -> float:
    """Mean per-clip Pearson r of the first lip principal component on the held-out clip."""
    scores = []
    for held in range(len(xs)):
        ridge = Ridge.fit(np.concatenate(xs[:held] + xs[held + 1 :]), np.concatenate(ys[:held] + ys[held + 1 :]), alpha)
        y = ys[held] - ys[held].mean(0)
        direction = np.linalg.svd(y, full_matrices=False)[2][0]
        scores.append(np.corrcoef(ridge.predict(xs[held]) @ direction, y @ direction)[0, 1])
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--exclude", nargs="*", default=[HELD_OUT])
    args = parser.parse_args()
    videos = args.videos or sorted(v for v in SHARED_VIDEOS.glob("*.mp4") if v.name not in args.exclude)
    start = time.perf_counter()
    data = {video.name: clip_data(video) for video in videos}
    print(f"tracked {len(data)} clips in {time.perf_counter() - start:.0f} s")
    for feature_set in FEATURE_SETS:
        xs = [stack_context(f[feature_set], RADIUS)[valid] for valid, f, _ in data.values()]
        ys = [y[valid] for valid, _, y in data.values()]
        scores = {alpha: leave_one_clip_out(xs, ys, alpha) for alpha in ALPHAS}
        alpha = max(scores, key=scores.get)
        ridge = Ridge.fit(np.concatenate(xs), np.concatenate(ys), alpha)
        meta = {
            "clips": list(data),
            "frames": int(sum(len(x) for x in xs)),
            "alpha": alpha,
            "leave_one_clip_out_r": round(scores[alpha], 4),
            "target": "offsets of the 40 MediaPipe lip points from the mean lips, model units (RMS face radius 1)",
            "trained": time.strftime("%Y-%m-%d"),
        }
        MotionPrior(ridge, feature_set, RADIUS, meta).save(prior_path(feature_set))
        print(f"{feature_set}: alpha {alpha:g}, leave-one-clip-out r {scores[alpha]:.3f} -> {prior_path(feature_set)}")


if __name__ == "__main__":
    main()
