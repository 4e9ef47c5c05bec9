"""Benchmark: one clock for sound and picture, on real footage whose picture starts after its sound.

congressman_d_60s.mp4 (shared data) gives a person (a profile finetuned on its first 25 s, no refiner) and
a test clip (20 s from 30 s on). The test clip is written three ways, each in sync when played by its
timestamps: sound and picture from 0; the sound from 0 and the picture from 0.067 s; and from 0.5 s (its
first frames dropped, as phones and `ffmpeg -ss` leave a clip; an mp4 edit list says when the picture
starts). For each:
1. self-dub (the clip dubbed with its own sound by the person's profile, coarse): against the input on the
   sound's clock, PSNR outside the lower face (above the real frame's nose tip less 15 % of the face's
   height) over the frames where both play, and mouth-opening r (Face Mesh on both videos);
2. finetune on the clip itself (no refiner): the held-out mouth r and the audio/video offset it found,
   against the clip that starts together;
3. evaluate of the edit-listed copy against the clip: frames compared, PSNR, time offset.
Writes benchmarks/results/clock.md and clock.json.

Usage: python benchmarks/clock.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from talkface import __version__  # noqa: E402
from talkface.config import DubConfig, FinetuneConfig  # noqa: E402
from talkface.dub import dub  # noqa: E402
from talkface.evaluate import evaluate  # noqa: E402
from talkface.face import topology  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import Audio, load_audio, probe, read_frames, write_video  # noqa: E402
from talkface.signals import pearson  # noqa: E402
from tests.media.timed import encode_at, remux  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"
SOURCE = DATA / "congressman_d_60s.mp4"
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10
NO_REFINER = FinetuneConfig(refiner=False)


LATE = {"starts together": 0.0, "picture 0.067 s after sound": 0.067, "picture 0.5 s after sound": 0.5}


def late_picture(frames: list[np.ndarray], sound: Audio, late: float, path: Path) -> Path:
    """The clip as a phone or `ffmpeg -ss` leaves it: the sound from 0, the picture from `late`
    seconds, in sync when played by the timestamps (the picture at t shows what was filmed at t,
    to the nearest frame). Every variant is encoded the same way (x264 CRF 12, AAC)."""
    first = int(round(late * 25))
    times = [late + k / 25 for k in range(len(frames) - first)]
    return encode_at(frames[first:], times, sound.samples, sound.sample_rate, path)


def cut(video: Path, first_s: float, last_s: float, path: Path) -> Path:
    frames = list(read_frames(video))[int(first_s * 25) : int(last_s * 25)]
    audio = load_audio(video)
    piece = Audio(audio.samples[int(first_s * audio.sample_rate) : int(last_s * audio.sample_rate)], audio.sample_rate)
    return write_video(path, frames, 25, piece, crf=12)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


def self_dub(video: Path, person: Path, folder: Path) -> dict:
    """Dub `video` with its own sound; PSNR above the lower face and mouth r against the input."""
    started = time.perf_counter()
    out = dub(video, video, folder / f"{video.stem}_dub.mp4", person, DubConfig(refine=False, fit="hold"), device="cpu").video
    seconds = time.perf_counter() - started
    first = int(np.ceil(probe(video).video_offset * 25 - 0.5))  # frames before the first picture hold it
    real_track, made_track = track_video(video), track_video(out)
    scores = []
    for index, (made, real) in enumerate(zip(read_frames(out), read_frames(video))):
        points = real_track.landmarks[index]
        if index < first or not np.isfinite(points).all():
            continue
        top = int(points[NOSE_TIP, 1] - 0.15 * (points[CHIN, 1] - points[FOREHEAD, 1]))
        scores.append(psnr(made[:top], real[:top]))
    n = min(real_track.n_frames, made_track.n_frames)
    real_mouth = topology.mouth_openness(real_track.landmarks[first:n])
    made_mouth = topology.mouth_openness(made_track.landmarks[first:n])
    lag = load_audio(out).samples[:32000], load_audio(video).samples[1600:8000]
    sound_lag_s = (int(np.argmax(np.correlate(lag[0], lag[1], "valid"))) - 1600) / 16000
    return {
        "above lower face PSNR dB (median / min)": f"{np.median(scores):.1f} / {np.min(scores):.1f}",
        "dub mouth r vs input": round(pearson(made_mouth, real_mouth), 3),
        "dub sound lag s": round(sound_lag_s, 4),
        "dub s": round(seconds, 1),
    }


def main() -> None:
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train, test = cut(SOURCE, 0, 25, folder / "train.mp4"), cut(SOURCE, 30, 50, folder / "test.mp4")
        person = finetune(train, folder / "person", NO_REFINER).folder
        frames, sound = list(read_frames(test)), load_audio(test)
        variants = {name: late_picture(frames, sound, late, folder / f"late{int(late * 1000)}.mp4") for name, late in LATE.items()}
        for name, video in variants.items():
            profile = finetune(video, folder / f"profile_{video.stem}", NO_REFINER)
            row = {
                "clip": name,
                "picture after sound s": round(probe(video).picture_after_sound, 4),
                "frames on the clock": len(list(read_frames(video))),
                "finetune held-out mouth r": profile.info.validation["mouth_r"],
                "finetune offset found (frames)": profile.info.validation.get("offset_frames"),
                "finetune frames": profile.info.source.n_frames,
                **self_dub(video, person, folder),
            }
            rows.append(row)
            print(row, flush=True)
        shifted = remux(test, folder / "edit_list_both.mp4", video_shift=0.7, audio_shift=0.7)
        comparison = evaluate(shifted, test).comparison
        edit_row = {
            "clip": "evaluate: both streams moved 0.7 s by an edit list, against the clip",
            "frames compared": comparison.n_frames_compared,
            "PSNR full dB": comparison.psnr_full,
            "time offset frames": comparison.time_offset_frames,
        }
        print(edit_row, flush=True)
    seconds = time.perf_counter() - started
    markdown = f"""# One clock for sound and picture

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {seconds:.0f} s in all. Command: `python benchmarks/clock.py`.
congressman_d_60s.mp4: a profile from its first 25 s (no refiner) dubs the 20 s from 30 s on with their own
sound; that clip is written with its picture starting 0.067 s and 0.5 s after its sound, in sync by the
timestamps (the picture's first frames dropped), and as it is (all three encoded alike).
PSNR: output against input, frame k against frame k on the sound's clock, above the real frame's nose tip
less 15 % of the face's height, over the frames where both play. Mouth r: Face Mesh mouth opening of the
dub against the input's. Finetune: on the clip itself, no refiner; held-out mouth r on its last 20 %.

{markdown_table(rows)}

{markdown_table([edit_row])}
"""
    save_results("clock", markdown, {"rows": rows, "evaluate": edit_row, "seconds": round(seconds)})


if __name__ == "__main__":
    main()
