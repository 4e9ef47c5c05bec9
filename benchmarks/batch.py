"""Benchmark: batch dubbing of 12 jobs over 2 people, with 1 and 2 workers, and a rerun.

People: obama_weekly_20s.mp4 and the first 20 s of congressman_d_60s.mp4, given as clips (the
batch finetunes each once, preset 'draft', before the first run). Audio: five files from
../shared/data/audio for each person, plus one unreadable file and one missing file.
Writes benchmarks/results/batch.md and batch.json.

Usage: python benchmarks/batch.py
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from talkface import __version__  # noqa: E402
from talkface.batch import run_batch  # noqa: E402
from talkface.config import FinetuneConfig  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.profile import default_profile_dir  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, write_video  # noqa: E402

from report import markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AUDIO = ["obama_5s.wav", "english_noisy_cafe_6s.wav", "french_7s.wav", "english_radio_8s.wav", "german_9s.wav"]


def first_seconds(video: Path, seconds: int, out: Path) -> Path:
    frames = [f for i, f in zip(range(seconds * 25), read_frames(video))]
    audio = load_audio(video)
    return write_video(out, frames, 25, Audio(audio.samples[: seconds * audio.sample_rate], audio.sample_rate))


def manifest(folder: Path, people: list[Path], name: str) -> Path:
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVE not really")
    rows = [(person, DATA / "audio" / audio, f"{name}/{person.stem}/{Path(audio).stem}.mp4") for person in people for audio in AUDIO]
    rows += [(people[0], broken, f"{name}/broken.mp4"), (people[1], folder / "missing.wav", f"{name}/missing.mp4")]
    path = folder / f"{name}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person", "audio", "out"])
        writer.writerows([(str(p), str(a), o) for p, a, o in rows])
    return path


def summary(name: str, report, workers: int) -> dict:
    frames = sum(r.n_frames for r in report.results if r.status == "done")
    return {
        "run": name,
        "workers": workers,
        "done": report.counts["done"],
        "skipped": report.counts["skipped"],
        "failed": report.counts["failed"],
        "seconds": round(report.seconds, 1),
        "output frames/s": round(frames / report.seconds, 1) if frames else 0.0,
    }


def main() -> None:
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        os.environ["TALKFACE_HOME"] = str(folder / "home")
        people = [DATA / "video" / "obama_weekly_20s.mp4", first_seconds(DATA / "video" / "congressman_d_60s.mp4", 20, folder / "congressman_d_20s.mp4")]
        started = time.perf_counter()
        for person in people:  # what the batch does once per person; timed apart from the jobs
            finetune(person, default_profile_dir(person), FinetuneConfig(preset="draft"))
        finetune_seconds = time.perf_counter() - started
        one = manifest(folder, people, "one_worker")
        first = run_batch(one, workers=1, preset="draft")
        rows.append(summary("1 worker", first, 1))
        rows.append(summary("rerun of the same manifest", run_batch(one, workers=1, preset="draft"), 1))
        two = manifest(folder, people, "two_workers")
        rows.append(summary("2 workers, fresh outputs", run_batch(two, workers=2, preset="draft"), 2))
        failures = [{"row": r.row, "audio": Path(r.audio).name, "error": r.error} for r in first.results if r.status == "failed"]
    markdown = (
        f"# Batch benchmark\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores. Command: `python benchmarks/batch.py`.\n\n"
        "12 jobs: 2 people x 5 audio files of `../shared/data/audio`, one unreadable and one missing audio file. "
        f"Both people were finetuned first (preset draft, {finetune_seconds:.0f} s for the two), as the batch does once per person. "
        "Output frames/s counts the frames of finished rows over the run's wall time.\n\n"
        + markdown_table(rows) + "\n\n## The two bad rows, as reported\n\n" + markdown_table(failures) + "\n"
    )
    save_results("batch", markdown, {"version": __version__, "runs": rows, "failures": failures})


if __name__ == "__main__":
    main()
