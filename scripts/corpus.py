"""Prepare the multi-speaker training data for the generic audio->lip model.

Usage: python scripts/corpus.py [--out out/corpus] [--only NAME ...]

Tracks and reconstructs every clip in ../shared/data/corpus (speech from the `.wav` beside a
clip where SOURCES.tsv says so) and in ../shared/data/video, then stores per clip, at 25 fps:
the MFCC and Whisper features, the speaker-independent lip target (`talkface.motion.lips`) and neutral lips,
the frontal mouth opening, the head pose, the speech envelope and the person's name. One
`.npz` per clip; a clip already prepared is skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkface.audio import extract  # noqa: E402
from talkface.config import FPS  # noqa: E402
from talkface.evaluate.metrics import speech_envelope  # noqa: E402
from talkface.face.fit import build_model  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.media import load_audio  # noqa: E402
from talkface.motion.lips import frontal_mouth_opening, lip_offsets, neutral_lips  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CORPUS = DATA / "corpus"
VIDEOS = DATA / "video"
FORMAT = 1
# people in ../shared/data/video (their clips carry no SOURCES.tsv row)
VIDEO_PEOPLE = {
    "congressman_c_8s.mp4": "congressman_c",
    "congressman_d_60s.mp4": "congressman_d",
    "obama_crop256_clip1.mp4": "barack_obama",
    "obama_crop256_clip2.mp4": "barack_obama",
    "obama_weekly_20s.mp4": "barack_obama",
    "senator_a_8s.mp4": "senator_a",
    "senator_b_8s.mp4": "senator_b",
}


def clips() -> list[dict]:
    """Every training clip: file, audio file, person, language."""
    rows = []
    with open(CORPUS / "SOURCES.tsv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            video = CORPUS / row["file"]
            wav = video.with_suffix(".wav")
            audio = wav if row["audio"].startswith("separate") and wav.exists() else video
            person = row["person"].split(",")[0].split("(")[0].strip()
            if row["file"].startswith("grid_"):  # one GRID speaker per description; s2 appears twice
                person = "grid s2" if "s2" in row["person"] else row["file"]
            rows.append({"video": video, "audio": audio, "person": person, "language": row["language"]})
    for name, person in VIDEO_PEOPLE.items():
        rows.append({"video": VIDEOS / name, "audio": VIDEOS / name, "person": person, "language": "en"})
    return rows


def sources() -> dict[str, str]:
    """Clip name (no suffix) -> 'repo @ commit : path (licence)' from SOURCES.tsv."""
    found = {}
    with open(CORPUS / "SOURCES.tsv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            found[Path(row["file"]).stem] = f"{row['repo']} @ {row['commit'][:10]} : {row['path']} ({row['repo_licence']})"
    return found


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(clip: dict, out: Path) -> str:
    video, audio_path = clip["video"], clip["audio"]
    target = out / f"{video.stem}.npz"
    if target.exists():
        return "cached"
    track = track_video(video)
    model, fit = build_model(track)
    audio = load_audio(audio_path)
    n_frames = track.n_frames
    expression = np.nan_to_num(fit.expression)
    np.savez_compressed(
        target,
        format=FORMAT,
        mfcc=extract(audio, "mfcc", n_frames).astype(np.float16),
        whisper=extract(audio, "whisper", n_frames).astype(np.float16),
        lips=lip_offsets(model, expression),
        opening=frontal_mouth_opening(model, expression),
        neutral=neutral_lips(model).astype(np.float32),
        pose=fit.pose,
        valid=fit.valid,
        envelope=speech_envelope(audio.samples, audio.sample_rate, FPS, n_frames).astype(np.float32),
        person=clip["person"],
        language=clip["language"],
        video=video.name,
        video_sha256=digest(video),
        audio_sha256=digest(audio_path),
    )
    return f"{n_frames} frames, {int(fit.valid.sum())} tracked"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "corpus")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for clip in clips():
        if args.only and clip["video"].name not in args.only:
            continue
        t0 = time.perf_counter()
        try:
            status = prepare(clip, args.out)
        except Exception as exc:  # a clip the tracker cannot use is reported and left out
            status = f"SKIPPED: {type(exc).__name__}: {exc}"
        print(f"{clip['video'].name}: {status} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
