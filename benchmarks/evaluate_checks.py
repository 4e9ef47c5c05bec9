"""Benchmark: `talkface evaluate` on its acceptance cases with real footage from ../shared/data.

1. the standard clip against itself (perfect scores expected);
2. the clip delayed by 3 frames against the original (offset 3 expected);
3. a different person's clip, cut to the same length, against it (identity distance > 0.6);
4. the same person in a different recording (identity distance < 0.6).
Prints a table and writes benchmarks/results/evaluate.md and evaluate.json.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TALKFACE_QUIET", "1")

from talkface import __version__  # noqa: E402
from talkface.evaluate import evaluate  # noqa: E402
from talkface.media import load_audio, read_frames, write_video  # noqa: E402

from report import markdown_table, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "video"
STANDARD = VIDEOS / "obama_weekly_20s.mp4"


def cut(source: Path, n_frames: int, folder: Path, delay: int = 0) -> Path:
    """The first n_frames of source (optionally delayed by `delay` frames), with its audio."""
    frames = list(itertools.islice(read_frames(source), n_frames - delay))
    frames = [frames[0]] * delay + frames
    return write_video(folder / f"{source.stem}_{n_frames}_{delay}.mp4", frames, audio=load_audio(source))


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        cases = [
            ("itself", STANDARD),
            ("delayed 3 frames", cut(STANDARD, 500, folder, delay=3)),
            ("other person (congressman_d, first 20 s)", cut(VIDEOS / "congressman_d_60s.mp4", 500, folder)),
            ("same person, other recording (obama_crop256_clip1)", cut(VIDEOS / "obama_crop256_clip1.mp4", 499, folder)),
        ]
        for name, generated in cases:
            start = time.perf_counter()
            result = evaluate(generated, STANDARD)
            c = result.comparison
            rows.append(
                {
                    "case": name,
                    "frames": c.n_frames_compared,
                    "psnr_full": round(c.psnr_full, 2),
                    "ssim_full": round(c.ssim_full, 4),
                    "psnr_face": round(c.psnr_face, 2),
                    "m_lmd": round(c.m_lmd, 3),
                    "f_lmd": round(c.f_lmd, 3),
                    "mouth_opening_r": round(c.mouth_opening_r, 3),
                    "yaw_error_deg": round(c.pose_error_deg["yaw"], 2),
                    "identity_distance": None if c.identity_distance is None else round(c.identity_distance, 3),
                    "time_offset_frames": c.time_offset_frames,
                    "av_offset_frames": result.generated.av_offset_frames,
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
    stamp = time.strftime("%Y-%m-%d")
    markdown = (
        f"# `talkface evaluate` acceptance cases\n\ntalkface {__version__}, {stamp}, {os.cpu_count()} CPU cores. "
        f"Reference: `{STANDARD.name}`. Command: `python benchmarks/evaluate_checks.py`.\n"
        "PSNR is capped at 100 dB for identical frames; LMD in px at a 256-px-wide face; offsets in frames "
        "(+ = the generated video is late); identity distance < 0.6 means the same person (dlib).\n\n"
        + markdown_table(rows) + "\n"
    )
    save_results("evaluate", markdown, {"version": __version__, "date": stamp, "rows": rows})


if __name__ == "__main__":
    main()
