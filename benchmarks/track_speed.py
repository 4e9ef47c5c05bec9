"""Benchmark: face tracking + 3D reconstruction on every video in ../shared/data/video.

Prints a table and writes benchmarks/results/track.md and track.json. Speed is frames of the
25 fps-normalised clip processed per second (decode + tracking + reconstruction + texture; the
overlay video is not included). Run: `make benchmark` or `python benchmarks/track_speed.py [VIDEOS...]`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TALKFACE_QUIET", "1")

from talkface import __version__, track  # noqa: E402
from talkface.errors import TalkfaceError  # noqa: E402

from report import markdown_table, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = ROOT.parent / "shared" / "data" / "video"


def bench(video: Path) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        try:
            summary = track(video, folder, overlay=False, force=True).summary
        except TalkfaceError as exc:
            return {"video": video.name, "error": f"{type(exc).__name__}: {exc}"}
        elapsed = time.perf_counter() - start
    return {
        "video": video.name,
        "size": f"{summary.width}x{summary.height}",
        "n_frames": summary.n_frames,
        "n_tracked": summary.n_tracked,
        "gaps": summary.gaps,
        "mean_reprojection_px": round(summary.mean_reprojection_px, 3),
        "mean_reprojection_raw_px": round(summary.mean_reprojection_raw_px, 3),
        "yaw_std_deg": round(summary.pose_std_deg["yaw"], 2),
        "seconds": round(elapsed, 2),
        "frames_per_second": round(summary.n_frames / elapsed, 1),
    }


def derived_videos(source: Path, folder: Path, seconds: float = 10.0) -> list[Path]:
    """The source clip placed on a 1280x720 and a vertical 1080x1920 canvas (first `seconds`)."""
    import itertools

    import cv2
    import numpy as np

    from talkface.media import load_audio, read_frames, write_video

    frames = list(itertools.islice(read_frames(source), int(seconds * 25)))
    made = []
    for name, (width, height) in {"landscape_1280x720": (1280, 720), "vertical_1080x1920": (1080, 1920)}.items():
        side = min(width, height)

        def placed(frame, width=width, height=height, side=side):
            canvas = np.zeros((height, width, 3), np.uint8)
            top, left = (height - side) // 2, (width - side) // 2
            canvas[top : top + side, left : left + side] = cv2.resize(frame, (side, side), interpolation=cv2.INTER_CUBIC)
            return canvas

        made.append(write_video(folder / f"{source.stem}_{name}.mp4", (placed(f) for f in frames), audio=load_audio(source)))
    return made


def main(videos: list[Path]) -> None:
    rows = [bench(v) for v in videos]
    table = markdown_table(
        [
            r if "error" in r else {
                "video": r["video"],
                "size": r["size"],
                "frames tracked": f"{r['n_tracked']}/{r['n_frames']}",
                "gaps": r["gaps"] or "none",
                "reprojection px (smoothed / raw)": f"{r['mean_reprojection_px']:.3f} / {r['mean_reprojection_raw_px']:.3f}",
                "yaw std °": r["yaw_std_deg"],
                "time s": r["seconds"],
                "frames/s": r["frames_per_second"],
            }
            for r in rows
        ]
    )
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    stamp = time.strftime("%Y-%m-%d")
    markdown = (
        f"# Tracking + reconstruction benchmark\n\ntalkface {__version__}, {stamp}, {machine}.\n"
        "Command: `python benchmarks/track_speed.py` (decode + Face Mesh tracking + 3D reconstruction + "
        "texture, at 25 fps; overlay not included).\n\n" + table + "\n"
    )
    save_results("track", markdown, {"version": __version__, "date": stamp, "machine": machine, "rows": rows})


if __name__ == "__main__":
    arguments = [Path(a) for a in sys.argv[1:]]
    if arguments:
        main(arguments)
    elif not SHARED_VIDEOS.exists():
        sys.exit(f"no videos given and {SHARED_VIDEOS} does not exist")
    else:
        with tempfile.TemporaryDirectory() as scratch:
            main(sorted(SHARED_VIDEOS.glob("*.mp4")) + derived_videos(SHARED_VIDEOS / "obama_weekly_20s.mp4", Path(scratch)))
