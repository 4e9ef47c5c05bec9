"""Benchmark: `talkface dub` on real footage.

1. Self-dub: congressman_d_60s.mp4 is cut in two; a profile is finetuned on the first half and
   the second half is dubbed with its own sound, coarse and refined. Against the real second half:
   mouth-opening r (Face Mesh on both videos), PSNR of the whole frame and outside the lower face
   (the real frame's landmarks below the nose tip, hull dilated by 15% of the face height: a
   region larger than dub's mask), identity distance, dub frames/s.
2. obama_weekly_20s.mp4 dubbed (profile from the video itself) with German speech and with 45 s
   of English (longer than the video: ping-pong); frames saved side by side.
3. Two people in one shot (Obama, the smaller face, beside a larger stranger) dubbed by Obama's
   profile: the stranger's half unchanged, Obama's mouth redrawn.
4. A long test video (default 2 minutes; --long-minutes 10 for the issue's case) made at 1280x720
   from shots of five clips, with a 10 s stretch of no face, dubbed by the CLI with the Obama
   profile (refined): tracking and dubbing each timed with its peak RSS (sampled from outside),
   shots found against the true cuts, the faceless stretch and the other people's shots unchanged.
Writes benchmarks/results/dub.md, dub.json and dub_frames.jpg.

Usage: python benchmarks/dub.py [--preset draft] [--long-minutes 2] [--parts self,obama,long]
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

import cv2
import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkface import __version__  # noqa: E402
from talkface.config import DubConfig, FinetuneConfig  # noqa: E402
from talkface.dub import dub, load_footage  # noqa: E402
from talkface.evaluate import evaluate  # noqa: E402
from talkface.face import topology  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, write_video  # noqa: E402
from talkface.config import TrackConfig  # noqa: E402
from talkface.profile import talkface_home  # noqa: E402
from talkface.signals import pearson  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NOSE_TIP, CHIN = 1, 152


def cut(video: Path, first_s: float, last_s: float, path: Path) -> Path:
    frames = list(read_frames(video))[int(first_s * 25) : int(last_s * 25)]
    audio = load_audio(video)
    piece = Audio(audio.samples[int(first_s * audio.sample_rate) : int(last_s * audio.sample_rate)], audio.sample_rate)
    return write_video(path, frames, 25, piece, crf=12)


def outside_lower_face_psnr(output: Path, reference: Path) -> float:
    """PSNR over the pixels outside each real frame's lower face (dilated hull below the nose)."""
    track = track_video(reference)
    errors, counts = 0.0, 0
    for index, (made, real) in enumerate(zip(read_frames(output), read_frames(reference))):
        keep = np.ones(real.shape[:2], bool)
        points = track.landmarks[index]
        if np.isfinite(points).all():
            lower = points[points[:, 1] > points[NOSE_TIP, 1], :2]
            height = points[:, 1].max() - points[:, 1].min()
            mask = np.zeros(real.shape[:2], np.uint8)
            cv2.fillConvexPoly(mask, cv2.convexHull(lower.astype(np.int32)), 1)
            size = int(0.15 * height) * 2 + 1
            mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
            keep = mask == 0
        difference = made.astype(np.float64) - real.astype(np.float64)
        errors += float((difference[keep] ** 2).sum())
        counts += int(keep.sum()) * 3
    return 10 * np.log10(255**2 / (errors / counts))


def lower_face_sharpness(video: Path, landmarks: np.ndarray) -> float:
    """Mean Laplacian variance of the lower face (nose tip to chin, the middle 70 % of the face's
    width: skin, lips and teeth, no background), over frames with a face."""
    values = []
    for frame, points in zip(read_frames(video), landmarks):
        if not np.isfinite(points).all():
            continue
        x0, x1 = points[:, 0].min(), points[:, 0].max()
        margin = 0.15 * (x1 - x0)
        ys = slice(int(max(points[NOSE_TIP, 1], 0)), int(min(points[CHIN, 1], frame.shape[0])))
        xs = slice(int(max(x0 + margin, 0)), int(min(x1 - margin, frame.shape[1])))
        grey = cv2.cvtColor(frame[ys, xs], cv2.COLOR_RGB2GRAY)
        if min(grey.shape) >= 16:
            values.append(cv2.Laplacian(grey, cv2.CV_64F).var())
    return float(np.mean(values))


def self_dub(folder: Path, preset: str, label: str = "") -> list[dict]:
    video = DATA / "video" / "congressman_d_60s.mp4"
    first, second = cut(video, 0, 30, folder / "first_half.mp4"), cut(video, 30, 60, folder / "second_half.mp4")
    started = time.perf_counter()
    profile = finetune(first, folder / "congressman_d", FinetuneConfig(preset=preset))
    finetune_s = time.perf_counter() - started
    rows = []
    offset = int(round(profile.motion.offset_frames))  # the recording's own audio/video offset (frames, found by finetune to a fraction)
    real_track = track_video(second)
    real = topology.mouth_openness(real_track.landmarks)
    real_sharpness = lower_face_sharpness(second, real_track.landmarks)
    for refine in (False, True):
        out = folder / f"self_dub_{'refined' if refine else 'coarse'}.mp4"
        result = dub(second, second, out, profile, DubConfig(refine=refine), "cpu")
        comparison = evaluate(out, second).comparison
        track = track_video(out)
        made = topology.mouth_openness(track.landmarks)
        shifted = real[offset:] if offset >= 0 else np.concatenate([np.full(-offset, np.nan), real])
        n = min(len(made), len(shifted), len(real))
        rows.append({
            "video": f"self-dub, {'refined' if refine else 'coarse'}{f' ({label})' if label else ''}",
            "mouth-opening r (lag 0)": round(pearson(made[:n], real[:n]), 3),
            f"r, recording's offset ({offset:+d}) applied": round(pearson(made[:n], shifted[:n]), 3),
            "PSNR whole frame dB": round(comparison.psnr_full, 2),
            "PSNR outside lower face dB": round(outside_lower_face_psnr(out, second), 2),
            "lower-face sharpness / real": round(lower_face_sharpness(out, track.landmarks) / real_sharpness, 3),
            "identity distance": round(comparison.identity_distance, 3) if comparison.identity_distance is not None else "",
            "frames": result.n_frames,
            "dub frames/s (256x256)": round(result.frames_per_second, 1),
        })
        print(rows[-1], flush=True)
    rows.append({"video": f"(finetune on the first 30 s, preset {preset}{f', {label}' if label else ''}: {finetune_s:.0f} s)"})
    return rows


def obama_dubs(folder: Path, preset: str) -> tuple[list[dict], Path]:
    video = DATA / "video" / "obama_weekly_20s.mp4"
    rows, sheets = [], []
    for name in ("german_9s.wav", "english_45s.mp3"):
        out = folder / f"obama_{Path(name).stem}.mp4"
        result = dub(video, DATA / "audio" / name, out, None, DubConfig(preset=preset), "cpu")
        evaluation = evaluate(out)
        rows.append({
            "audio": name, "output s": round(result.n_frames / 25, 1), "frames redrawn": result.dubbed_frames,
            "face found in output": round(evaluation.generated.face_detection_rate, 3),
            "A/V offset frames": evaluation.generated.av_offset_frames, "mouth sharpness": round(evaluation.generated.mouth_sharpness, 1),
            "dub frames/s (450x450, refined)": round(result.frames_per_second, 1),
        })
        print(rows[-1], flush=True)
        frames = list(read_frames(out))
        originals = list(read_frames(video))
        picks = np.linspace(20, len(frames) - 20, 4).astype(int)
        period = 2 * (len(originals) - 1)
        row = []
        for k in picks:
            s = k % period
            s = s if s < len(originals) else period - s
            row.append(np.vstack([originals[s][150:400, 100:350], frames[k][150:400, 100:350]]))
        sheets.append(np.hstack(row))
    sheet = RESULTS / "dub_frames.jpg"
    cv2.imwrite(str(sheet), np.vstack(sheets)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    return rows, sheet


def two_people(folder: Path, preset: str) -> tuple[dict, Path]:
    """Obama (right, the smaller face) beside a stranger (left, larger) in one 1280x720 shot,
    dubbed with German by Obama's profile (made from obama_weekly_20s.mp4): the stranger's half
    must stay as it was and Obama's mouth be redrawn."""
    from talkface.dub import prepare_person

    person = prepare_person(DATA / "video" / "obama_weekly_20s.mp4", preset, "cpu")
    obama = read_frames(DATA / "video" / "obama_weekly_20s.mp4")
    frames = []
    for stranger, own in zip(read_frames(DATA / "video" / "senator_a_8s.mp4"), obama):
        canvas = np.full((720, 1280, 3), 30, np.uint8)
        h, w = stranger.shape[:2]
        scale = 640 / h
        stranger = cv2.resize(stranger, (int(w * scale) // 2 * 2, 640), interpolation=cv2.INTER_AREA)[:, :640]
        canvas[40:680, : stranger.shape[1]] = stranger
        canvas[160:560, 800:1200] = cv2.resize(own, (400, 400), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    video = write_video(folder / "two_people.mp4", frames, 25, None, crf=12)
    out = folder / "two_people_dubbed.mp4"
    result = dub(video, DATA / "audio" / "german_9s.wav", out, person, DubConfig(crf=0), "cpu")
    made = list(read_frames(out))
    source = list(read_frames(video))
    period = 2 * (len(source) - 1)
    left, right, picks = [], [], []
    for k, frame in enumerate(made):
        s = k % period
        s = s if s < len(source) else period - s
        left.append(psnr(frame[:, :700], source[s][:, :700]))
        right.append(psnr(frame[360:560, 900:1100], source[s][360:560, 900:1100]))
        picks.append((source[s], frame))
    row = {
        "video": f"{len(source) / 25:.0f} s, 1280x720, Obama (400 px frame) beside a larger stranger",
        "output frames": result.n_frames, "frames redrawn": result.dubbed_frames,
        "stranger's half PSNR, min dB (lossless output)": round(float(min(left)), 1),
        "Obama's lower face PSNR, mean dB": round(float(np.mean(right)), 1),
    }
    chosen = [picks[k] for k in np.linspace(30, len(picks) - 30, 3).astype(int)]
    sheet = RESULTS / "dub_two_people.jpg"
    cv2.imwrite(str(sheet), np.vstack([np.hstack([cv2.resize(a, (640, 360)), cv2.resize(b, (640, 360))]) for a, b in chosen])[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return row, sheet


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


def long_video(folder: Path, minutes: float) -> tuple[Path, list[int], list[str]]:
    """Shots of five clips at 1280x720 (letterboxed), one 10 s faceless stretch, repeated to
    `minutes`; with the first frame of each shot and each frame's label (obama, other, faceless)."""
    clips = [("obama_weekly_20s.mp4", "obama"), ("congressman_c_8s.mp4", "other"), ("senator_a_8s.mp4", "other"),
             ("obama_crop256_clip1.mp4", "obama"), ("senator_b_8s.mp4", "other")]
    target = int(minutes * 60 * 25)
    cuts, labels = [], []

    def fitted(frame):
        h, w = frame.shape[:2]
        scale = min(1280 / w, 720 / h) * 0.8
        small = cv2.resize(frame, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2), interpolation=cv2.INTER_AREA)
        canvas = np.full((720, 1280, 3), 30, np.uint8)
        y, x = (720 - small.shape[0]) // 2, (1280 - small.shape[1]) // 2
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        return canvas

    def shot(frames, label):
        cuts.append(len(labels))
        for frame in frames:
            if len(labels) >= target:
                return
            labels.append(label)
            yield frame

    def frames():
        wall = fitted(cv2.resize(next(read_frames(DATA / "video" / "obama_weekly_20s.mp4"))[:100, :100], (450, 450)))
        first_round = True
        while len(labels) < target:
            for n, (name, label) in enumerate(clips):
                yield from shot((fitted(f) for f in read_frames(DATA / "video" / name)), label)
                if first_round and n == 1:
                    yield from shot((wall for _ in range(250)), "faceless")
            first_round = False

    speech = load_audio(DATA / "video" / "obama_weekly_20s.mp4")
    path = write_video(folder / "long.mp4", frames(), 25, Audio(np.resize(speech.samples, int(minutes * 60 * speech.sample_rate)), speech.sample_rate))
    return path, sorted(set(c for c in cuts if c < target)), labels


def measure(command: list[str]) -> tuple[float, float]:
    """Peak RSS (MB, sampled every 0.5 s) and seconds of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.5)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read()[-600:]}")
    return peak, time.perf_counter() - started


def long_dub(folder: Path, minutes: float) -> dict:
    """The long video: tracked (its own process, as dub's first stage, cached), then dubbed
    refined by the CLI with the Obama profile, each measured for time and peak memory."""
    from talkface.cache import file_digest
    from talkface.media import write_audio

    video, true_cuts, labels = long_video(folder, minutes)
    speech = load_audio(DATA / "audio" / "english_45s.mp3")
    audio = write_audio(folder / "long_speech.flac", Audio(np.resize(speech.samples, len(labels) * speech.sample_rate // 25), speech.sample_rate))
    obama = next((talkface_home() / "profiles").glob("obama_weekly_20s-*"))
    out = folder / "long_dubbed.mp4"
    work = talkface_home() / "dubs" / file_digest(video)[:16]
    track_code = f"from pathlib import Path; from talkface.dub import load_footage; from talkface.config import TrackConfig; load_footage(Path({str(video)!r}), Path({str(work)!r}), TrackConfig())"
    track_peak, track_seconds = measure([sys.executable, "-c", track_code])
    peak, seconds = measure([sys.executable, "-m", "talkface", "dub", "--video", str(video), "--audio", str(audio), "--person", str(obama), "--out", str(out)])
    footage = load_footage(video, work, TrackConfig())
    found = list(np.flatnonzero(footage.cuts))
    scores = {"faceless": [], "other": [], "obama": []}
    for label, real, made in zip(labels, read_frames(video), read_frames(out)):
        scores[label].append(psnr(real, made))
    return {
        "video": f"{minutes:g} min, 1280x720, {len(true_cuts)} shots from 5 clips and a 10 s faceless stretch",
        "shots found / true": f"{len(found)} / {len(true_cuts)}",
        "true cuts found (±1 frame)": sum(any(abs(f - t) <= 1 for f in found) for t in true_cuts),
        "PSNR faceless stretch, min dB": round(float(min(scores["faceless"])), 1),
        "PSNR other people's shots, min dB": round(float(min(scores["other"])), 1),
        "PSNR Obama shots (dubbed), mean dB": round(float(np.mean(scores["obama"])), 1),
        "Obama frames (dubbed if found)": len(scores["obama"]),
        "tracking s": round(track_seconds), "tracking peak RSS MB": round(track_peak),
        "dub s (refined)": round(seconds), "dub peak RSS MB": round(peak),
        "dub frames/s": round(len(labels) / seconds, 1),
        "frames/s, tracking included": round(len(labels) / (seconds + track_seconds), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="draft", help="refiner preset of the profiles (draft: ~3 min each on 2 cores)")
    parser.add_argument("--long-minutes", type=float, default=2.0)
    parser.add_argument("--self-label", default="", help="name the self-dub rows (e.g. before, after); rows of other names are kept")
    parser.add_argument("--parts", default="self,obama,two,long", help="which parts to run (none: only rewrite dub.md); the others keep their committed results")
    args = parser.parse_args()
    parts = set(args.parts.split(",")) - {"none"}  # --parts none: rewrite dub.md from dub.json
    earlier = json.loads((RESULTS / "dub.json").read_text()) if (RESULTS / "dub.json").exists() else {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        os.environ["TALKFACE_HOME"] = str(folder / "home")
        self_runs = earlier.get("self_dub", {})
        self_runs = {"": self_runs} if isinstance(self_runs, list) else self_runs  # from before runs were labelled
        if "self" in parts:  # runs of other labels are kept (before/after a change)
            self_runs[args.self_label] = self_dub(folder, args.preset, args.self_label)
        self_rows = [row for rows in self_runs.values() for row in rows]
        obama_rows, sheet = obama_dubs(folder, args.preset) if "obama" in parts or "long" in parts else (earlier["obama"], earlier["frames"])
        two_row = two_people(folder, args.preset)[0] if "two" in parts else earlier.get("two")
        long_row = long_dub(folder, args.long_minutes) if "long" in parts else earlier["long"]
        print(long_row, flush=True)
    presets = earlier.get("presets", {"self": "draft", "obama": "draft"})
    seconds = time.perf_counter() - started if parts else earlier.get("seconds", 0)
    command = f"python benchmarks/dub.py --preset {args.preset} --long-minutes {args.long_minutes:g} --parts {args.parts}" + (f" --self-label {args.self_label}" if args.self_label else "")
    commands = earlier.get("commands", {})
    commands.update({part: command for part in ("self", "obama", "two", "long") if part in parts or (part == "obama" and "long" in parts)})
    presets.update({part: args.preset for part in ("self", "obama", "two") if part in parts or (part == "obama" and "long" in parts)})
    text = f"""# Dub benchmark

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, no GPU; the last run took {seconds:.0f} s.
Commands that made each part (a part not run keeps its last results): {'; '.join(f"{part}: `{command}`" for part, command in commands.items())}.
Refiner preset of the profiles: self-dub {presets['self']}, Obama (sections 2 and 4) {presets['obama']}, two people {presets.get('two', '-')}.

## 1. Self-dub: the second half of congressman_d_60s.mp4 with its own sound

Profile finetuned on the first 30 s. Compared with the real second half (30 s, 256x256): mouth opening
from Face Mesh on both videos. The recording's own sound is a few frames off its picture (finetune
measures it against the corpus consensus); the dub puts the mouth in sync with the sound, so the
comparison with the real mouth is given both as is and with that offset applied (as in lipsync.md).
Outside the lower face only re-encoding changes pixels (x264 CRF 18 of a CRF-12 source). Lower-face
sharpness: Laplacian variance from the nose tip to the chin (the middle 70 % of the face's width), output
over the real frames'. A name in brackets is the run's `--self-label` (runs of other names are kept, so a
change is measured before and after it).

{markdown_table(self_rows)}

## 2. obama_weekly_20s.mp4 dubbed with other speech (profile built from the video itself)

{markdown_table(obama_rows)}

![frames](dub_frames.jpg)

Top of each pair: the video's own frame; below: the dub at the same moment (German row first,
then 45 s of English, ping-ponged past the video's 20 s). The German dub's time includes building the
profile from the video (tracking, finetune with the preset above); the English one reuses it.

## 3. Two people in view: the profile's person is the smaller face

{markdown_table([two_row]) if two_row else "(not run yet)"}

![two people](dub_two_people.jpg)

Left: the video; right: the dub (lossless), at three moments. Both faces are followed; the one that is
the profile's person by identity is dubbed, the stranger's half is left as it is.

## 4. A long video with cuts and a faceless stretch (CLI, refined)

{markdown_table([long_row])}
"""
    save_results("dub", text, {"self_dub": self_runs, "obama": obama_rows, "two": two_row, "long": long_row, "frames": str(sheet), "presets": presets, "commands": commands, "seconds": round(seconds)})


if __name__ == "__main__":
    main()
