"""Benchmark: peak memory of whole commands against the length of their input.

Runs the real CLI (`python -m talkface ...`) as a user would and samples the process's
resident memory (VmRSS, every 0.5 s) from outside: the peak, and the memory at a quarter, half
and three quarters of the run, which should be flat when the work is streamed.
- `speak --no-refine` with 1, 10 and 60 minutes of speech (the shipped clip's audio looped with a
  little noise) on a profile of the shipped 3 s test clip (450x450);
- `speak` refined, 1 minute, on the same person with a small refiner;
- `track` on 1- and 10-minute videos (the bundled 20 s example looped).
Writes benchmarks/results/memory.md and memory.json. Command: `python benchmarks/memory.py`
(add `--minutes 1 10` to skip the hour; it takes about as long as the audio at coarse speed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import markdown_table  # noqa: E402
from talkface._version import __version__  # noqa: E402
from talkface.media import Audio, load_audio, write_audio  # noqa: E402

CLIP = ROOT / "tests" / "data" / "obama_3s.mp4"
EXAMPLE = ROOT / "examples" / "obama_weekly_20s.mp4"
RESULTS = ROOT / "benchmarks" / "results"


def measure(args: list[str], limit: float | None = None) -> dict:
    """Run `python -m talkface ARGS`, sampling its RSS; peak and the quartiles' RSS in MB. With
    `limit` (seconds) the command is stopped then, and the RSS at a tenth and nine tenths of that
    window are given too (how flat it stays)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "talkface", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    while process.poll() is None:
        if limit is not None and time.perf_counter() - started > limit:
            process.terminate()
            process.wait()
            break
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append((time.perf_counter() - started, int(line.split()[1]) / 1024))
        except OSError:
            pass
        time.sleep(0.5)
    err = process.stderr.read()
    seconds = time.perf_counter() - started
    if limit is not None and seconds > limit:
        rss = np.array([mb for _, mb in samples])
        at = lambda share: float(rss[min(int(share * len(rss)), len(rss) - 1)])  # noqa: E731
        return {"peak RSS MB": round(float(rss.max())), "RSS at 25/50/75 % MB": f"{at(0.25):.0f} / {at(0.5):.0f} / {at(0.75):.0f}",
                "RSS at 10/90 % MB": f"{at(0.1):.0f} / {at(0.9):.0f}", "seconds": f"stopped at {limit:.0f}"}
    if process.returncode != 0:
        raise SystemExit(f"talkface {' '.join(args)} failed: {err[-500:]}")
    rss = np.array([mb for _, mb in samples]) if samples else np.zeros(1)
    at = lambda share: float(rss[min(int(share * len(rss)), len(rss) - 1)])  # noqa: E731
    return {"peak RSS MB": round(float(rss.max())), "RSS at 25/50/75 % MB": f"{at(0.25):.0f} / {at(0.5):.0f} / {at(0.75):.0f}", "seconds": round(seconds)}


def long_audio(minutes: float, path: Path) -> Path:
    speech = load_audio(CLIP)
    n = int(minutes * 60 * speech.sample_rate)
    noise = np.random.default_rng(0).normal(0, 0.003, n).astype(np.float32)
    return write_audio(path, Audio(np.resize(speech.samples, n) + noise, speech.sample_rate))


def long_video(minutes: float, path: Path) -> Path:
    """The example looped to `minutes`, with its sound looped too."""
    from talkface.media import read_frames, write_video

    clip = list(read_frames(EXAMPLE))
    n = int(minutes * 60 * 25)
    speech = load_audio(EXAMPLE)
    audio = Audio(np.resize(speech.samples, int(minutes * 60 * speech.sample_rate)), speech.sample_rate)
    return write_video(path, (clip[i % len(clip)] for i in range(n)), 25, audio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="*", default=[1, 10, 60], help="audio lengths for speak (none: skip)")
    parser.add_argument("--size", type=int, default=450, help="the person's clip is scaled to SIZE x SIZE (the shipped one is 450)")
    parser.add_argument("--no-track", action="store_true", help="skip the track rows")
    parser.add_argument("--no-refined", action="store_true", help="skip the refined speak row")
    parser.add_argument("--preview", action="store_true", help="speak rows with --preview (the shaded mesh: every stage that grows with length, at a fraction of the rendering time)")
    parser.add_argument("--append", action="store_true", help="add these rows to the committed results instead of replacing them")
    parser.add_argument("--refined-minutes", type=float, default=1.0, help="audio length of the refined speak row")
    parser.add_argument("--limit", type=float, default=None, help="stop the refined speak after this many seconds (an hour refined takes hours on 2 cores)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        d = Path(scratch)
        env_script = (
            "from talkface.config import FinetuneConfig, RefinerConfig; from talkface.finetune import finetune; import sys\n"
            "finetune(sys.argv[1], sys.argv[2], FinetuneConfig(min_seconds=2.0), refiner_config=RefinerConfig(crop_size=128, steps=60, batch=4))\n"
        )
        clip = CLIP
        if args.size != 450:
            import cv2

            from talkface.media import read_frames, write_video

            clip = write_video(d / "clip.mp4", (cv2.resize(f, (args.size, args.size), interpolation=cv2.INTER_AREA) for f in read_frames(CLIP)), 25, load_audio(CLIP))
        subprocess.run([sys.executable, "-c", env_script, str(clip), str(d / "person")], check=True, capture_output=True)
        for minutes in args.minutes:
            audio = long_audio(minutes, d / f"speech_{minutes:g}min.flac")
            mode = "--preview" if args.preview else "--no-refine"
            row = measure(["speak", "--audio", str(audio), "--person", str(d / "person"), "--out", str(d / "out.mp4"), mode])
            rows.append({"command": f"speak {mode} ({args.size}x{args.size})", "input": f"{minutes:g} min audio", **row, "frames/s": round(minutes * 60 * 25 / row["seconds"], 1)})
            print(rows[-1], flush=True)
        audio = long_audio(args.refined_minutes, d / f"speech_{args.refined_minutes:g}min.flac")
        row = None if args.no_refined else measure(["speak", "--audio", str(audio), "--person", str(d / "person"), "--out", str(d / "out.mp4")], args.limit)
        if row:
            speed = round(args.refined_minutes * 60 * 25 / row["seconds"], 1) if args.limit is None else ""
            rows.append({"command": f"speak (refined, {args.size}x{args.size})", "input": f"{args.refined_minutes:g} min audio", **row, "frames/s": speed})
            print(rows[-1], flush=True)
        for minutes in () if args.no_track else (1, 10):
            video = long_video(minutes, d / f"video_{minutes}min.mp4")
            row = measure(["track", "--video", str(video), "--out", str(d / f"track_{minutes}")])
            rows.append({"command": "track", "input": f"{minutes} min video 450x450", **row, "frames/s": round(minutes * 60 * 25 / row["seconds"], 1)})
            print(rows[-1], flush=True)
    _write(rows, started, args.append)


def _write(rows: list[dict], started: float, append: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    if append and (RESULTS / "memory.json").exists():
        rows = json.loads((RESULTS / "memory.json").read_text()) + rows
    (RESULTS / "memory.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / "memory.md").write_text(f"""# Peak memory against input length

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s in all.
Commands: `python benchmarks/memory.py --minutes 1 10` (speak rows at 450x450, track rows) and
`python benchmarks/memory.py --preview --minutes 1 60 --no-track --no-refined --append` (the hour: `--preview`
runs every stage that grows with the audio's length, features, motion, frames streamed to the encoder, but
draws the shaded mesh instead of the textured face, so the hour takes 25 minutes instead of two hours; the
textured render's own memory does not grow with length, as the 1- and 10-minute rows show). Each row is one run of the real CLI; its resident memory is
sampled every 0.5 s from outside. The person is a profile of the shipped 3 s test clip (450x450, or
scaled down). The refined hour (`python benchmarks/memory.py --minutes --no-track --refined-minutes 60 --limit 900
--append`) is stopped after 900 s (a refined hour takes hours on 2 cores): its first ~250 s are the audio's features
(the peak, Whisper), then it renders; RSS at 10 / 90 % of that window shows how flat it stays.

{markdown_table(rows)}

Frames are streamed from decoder to encoder; audio is featurised in overlapping windows; what grows
with length is the per-frame motion (expression, pose and 478 landmarks: 5.7 kB a frame, 0.5 GB an
hour) and the decoded audio (3.8 MB a minute).
""")
    print((RESULTS / "memory.md").read_text())


if __name__ == "__main__":
    main()
