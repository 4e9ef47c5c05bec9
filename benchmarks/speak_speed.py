"""Benchmark: refined `speak` of 30 s at 512², before and after a change, on one machine in one run.

The speed benchmark (speed.py) finetunes in every mode it measures; this one measures `speak` alone
on one profile made once (the speed benchmark's `clip512`: all of obama_weekly_20s.mp4 upscaled to
512x512, finetuned with the standard preset), so a change to the per-frame work can be measured in
minutes, on a slow machine too:

- speak, stage by stage: the code at --before (extracted with `git archive`) and this checkout take
  turns, each in its own process (before, after, before, after), 30 s of English each time;
- the x264 settings: the `speak` output of this checkout written losslessly (CRF 0), then encoded
  with the settings before ("medium", CRF 18) and after (media/video.py's preset, config.DEFAULT_CRF),
  for a clip profile and a photo profile (tests/data/biden_portrait_320.jpg): milliseconds a frame,
  face PSNR against the lossless frames and face sharpness (Laplacian variance) as a share of theirs,
  in the box where the frames move (the face).

Usage: python benchmarks/speak_speed.py [--before REV] [--profile DIR] [--results speak_speed]
Writes benchmarks/results/speak_speed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
BEFORE = "871a38c"  # talkface before x264 "faster" at CRF 17
WORK = ROOT / "out" / "speak_speed"
PORTRAIT = ROOT / "tests" / "data" / "biden_portrait_320.jpg"
ROUNDS = 2


def speak_once(code: Path, profile: Path, speech: Path, out: Path) -> dict:
    """Child process: one refined `speak` with talkface imported from `code`, stage by stage."""
    sys.path.insert(0, str(code))
    import talkface

    assert Path(talkface.__file__).resolve().is_relative_to(code.resolve()), talkface.__file__
    from speed import run_speak
    from talkface.profile import load_profile

    stages, wall, frames = run_speak(load_profile(profile), speech, out, "cpu")
    return {**stages, "frames": frames, "frames_per_s": round(frames / wall, 1)}


def x264_rows(video: Path, name: str) -> list[dict]:
    """The lossless `video` encoded with the settings before and after: time, face PSNR, face sharpness."""
    import av
    import cv2
    import numpy as np

    from talkface.config import DEFAULT_CRF
    from talkface.media import read_frames
    from talkface.media.video import X264_PRESET

    frames = list(read_frames(video))
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[::5]]).astype(np.float32)
    ys, xs = np.nonzero(grey.std(0) > 4)  # where the frames move: the face
    box = (slice(int(np.percentile(ys, 2)), int(np.percentile(ys, 98))), slice(int(np.percentile(xs, 2)), int(np.percentile(xs, 98))))

    def sharpness(images) -> float:
        return float(np.mean([cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(f[box]), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in images]))

    lossless = sharpness(frames)
    height, width = frames[0].shape[:2]
    rows = []
    for label, preset, crf in (("before", "medium", 18), ("after", X264_PRESET, DEFAULT_CRF)):
        path = video.with_name(f"{video.stem}_{preset}{crf}.mp4")
        started = time.perf_counter()
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        ms = (time.perf_counter() - started) / len(frames) * 1000
        back = list(read_frames(path))
        mse = np.mean([np.mean((a[box].astype(np.float64) - b[box].astype(np.float64)) ** 2) for a, b in zip(frames, back)])
        rows.append({
            "profile": name, "settings": label, "preset": preset, "crf": crf, "ms_per_frame": round(ms, 1),
            "face_psnr_db": round(float(10 * np.log10(255**2 / max(mse, 1e-12))), 2), "face_sharpness": round(sharpness(back) / lossless, 3),
            "kilobytes": path.stat().st_size // 1000,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the commit to measure as `before`")
    parser.add_argument("--profile", type=Path, default=WORK / "profile", help="a clip512 profile (made here when missing)")
    parser.add_argument("--results", default="speak_speed")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # child: speak with talkface from this folder
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.profile = args.profile.resolve()
    speech = WORK / "speech30.wav"
    if args.one:
        print(json.dumps(speak_once(args.one, args.profile, speech, args.out)))
        return
    sys.path.insert(0, str(ROOT))
    from report import markdown_table, save_results
    import speed
    from talkface import __version__

    WORK.mkdir(parents=True, exist_ok=True)
    speed.write_speech(speech)
    if not (args.profile / "refiner.json").exists():
        speed.upscale_clip(WORK)
        speed.run_finetune(WORK / "clip512.mp4", args.profile, "cpu", "mfcc+whisper")
    speak_rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        before_code = scratch / "before_code"
        speed.extract_talkface(args.before, before_code)
        for round_ in range(ROUNDS):
            for label, code in (("before", before_code), ("after", ROOT)):
                command = [sys.executable, __file__, "--one", str(code), "--profile", str(args.profile), "--out", str(scratch)]
                done = subprocess.run(command, capture_output=True, text=True, cwd=scratch)
                if done.returncode:
                    sys.exit(f"speak ({label}) failed:\n{done.stderr[-3000:]}")
                speak_rows.append({"mode": label, "round": round_ + 1, **json.loads(done.stdout.strip().splitlines()[-1])})
                print(speak_rows[-1], flush=True)
    portrait = WORK / "portrait"
    if not (portrait / "profile.json").exists():
        subprocess.run([sys.executable, "-m", "talkface", "finetune", "--image", str(PORTRAIT), "--out", str(portrait)], check=True, capture_output=True)
    x264 = []
    for name, folder in (("clip 512²", args.profile), ("photo 320²", portrait)):
        lossless = WORK / f"{folder.name}_lossless.mp4"
        subprocess.run([sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(folder), "--crf", "0", "--out", str(lossless)],
                       check=True, capture_output=True)
        x264 += x264_rows(lossless, name)
    walls = {label: [row["wall"] for row in speak_rows if row["mode"] == label] for label in ("before", "after")}
    summary = {label: {"wall_s": walls[label], "best_wall_s": min(walls[label]), "best_wall_over_audio": round(min(walls[label]) / 30, 2)} for label in walls}
    summary["after_over_before_best_wall"] = round(summary["after"]["best_wall_s"] / summary["before"]["best_wall_s"], 3)
    command = "python benchmarks/speak_speed.py" + (f" --before {args.before}" if args.before != BEFORE else "")
    markdown = (
        "# speak at 512²: before and after, one machine, one run\n\n"
        f"talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), device cpu. "
        f"Command: `{command}`. before: talkface at {args.before}; after: this checkout. Each `speak` runs in its own process, "
        "the two taking turns; seconds inside each stage's function (stages overlap in threads).\n\n"
        "## Refined speak of 30 s of English (`english_45s.mp3`) with the clip512 profile\n\n"
        + markdown_table(speak_rows)
        + "\n\n" + markdown_table([{"mode": label, **values} for label, values in summary.items() if isinstance(values, dict)])
        + f"\n\nafter / before, best wall: {summary['after_over_before_best_wall']}\n\n"
        "## x264: the same lossless `speak` frames encoded with the settings before and after\n\n"
        + markdown_table(x264) + "\n"
    )
    save_results(args.results, markdown, {"speak": speak_rows, "summary": summary, "x264": x264, "before": args.before})


if __name__ == "__main__":
    main()
