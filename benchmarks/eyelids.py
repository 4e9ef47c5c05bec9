"""Benchmark: eyes that close, brows and mouths that move as far as the person's, on people whose clip shows almost no blink (issue 35).

Five people no model was tuned on, each finetuned (default preset) on a stretch of their clip
holding at most one blink (Face Mesh lid gap, `talkface.signals.blink_frames`), then made to say
30 s of unseen speech (the first 30 s of english_45s.mp3) at 30 blinks a minute (`--blink-rate
30`, seed 0). On the refined video, Face Mesh's lid gap (both eyes' mean, over eye width) is read
in every frame; the open height is its median over frames away from the motion's blinks. For each
blink of the motion: the least lid gap the video shows within 2 frames of it, over the open
height. A blink closes the eyes when that is below 0.4 (the issue's bar), leaves a half-open stare
when it stays above 0.6. The real clips' own blinks read 0.02-0.43 (their stretch's `clip blink`).

On the same videos, Face Mesh on every frame: the brows' spread (std of their height above the eye
line over the eye distance, benchmarks/realism.py) and the mouth's (std of the inner-lip gap over
mouth width), each over the same person's stretch (`brow spread`, `mouth spread`: video / clip;
the issue asks 0.8-1.25 for the brows). The motion alone (`motion` columns: the face model's own
brows and mouth, before any rendering) is read for every recording in ../shared/data/audio (the
languages table: mouth, then brows, over the clip's; the congressman below too). These five people were in the corpus the
generic lip model learnt from, so their mouths are also measured on one it never saw: the
congressman of congressman_d_60s.mp4 (left out of every shipped model), finetuned on his first
20 s and made to say his own next 30 s, the video's mouth spread over that of his real next 30 s
(the issue asks 0.9-1.1) and its mouth r against them (the real frames moved by the recording's
audio/video offset finetune found).

Whether the picture's mouth opens as the motion asks (every person, the congressman too): Face Mesh's
mouth opening in each frame of the video against the same measure on the motion's landmarks, the
slope of a line fitted through them (`mouth video / motion (slope)`: 1, the mouth opens as far as
asked; the refiner drew small faces' mouths less open than their coarse frames), the ratio of their
spreads and their r. The five people's rows read Face Mesh frame by frame, unsmoothed (as their lid gap);
the congressman's reads `track_video`'s smoothed landmarks, as the rest of his row does: the two
readings differ by a few hundredths, so compare each row across modes, not the rows with each other.

No setting of the lid closing (talkface/render/eyelids.py) was tuned on these people but the German
newsreader, whose shut patches were looked at while setting the lashes' band (LASH_BAND).

`before`: talkface at the commit given by --before (eyes shut only where the clip showed them
shut); `base`: the commit given by --base (eyes shut as drawn; brows and mouth not yet held to
the person's spread); `previous`: the commit given by --previous (the standard preset's refiner
adapted in 100 steps of 8 crops); `after`: this checkout (400 steps of 4 crops). Each in its own process with its own profiles.
The bald man (added later) is measured in `after` only. Robert Downey Jr.'s stretch is behind pink-tinted lenses: Face
Mesh reads his own real blink there at 0.42 of open (`clip blink depth`) (without glasses, in his other corpus clip, 0.15-0.39), so this
measure cannot see his eyes shut, drawn or real.
Writes benchmarks/results/eyelids.md, eyelids.json and eyelids_crops.jpg (per person and mode: the
eyes at 100% open, at the deepest frame of the median blink and of the least deep one).

Usage: python benchmarks/eyelids.py [--before REV] [--base REV] [--previous REV] [--modes before,base,previous,after] [--reuse MODES] [--work out/eyelids]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BEFORE = "a11c820"  # talkface before eyes were shut as drawn
BASE = "0f2c38c"  # eyes shut as drawn, before brows and mouths were held to the person's spread
PREVIOUS = "f8886a9"  # the standard refiner adapted in 100 steps of 8 crops (now 400 of 4)
# a person the generic lip model never saw, with their own unseen speech: (clip, training frames, test frames)
HELD_OUT = (DATA / "video" / "congressman_d_60s.mp4", 500, 750)
SPEECH = DATA / "audio" / "english_45s.mp3"
SECONDS = 30.0
BLINK_RATE = 30.0
CLOSED, STARE = 0.4, 0.6  # least lid gap over open: shut below CLOSED, a half-open stare above STARE
# (name, clip, first frame, frames, shortest clip accepted in s): stretches holding at most one blink
PEOPLE = [
    ("german newsreader", DATA / "corpus" / "german_man_newsdesk_mimictalk_german20s.mp4", 0, 437, 10.0),
    ("Robert Downey Jr.", DATA / "corpus" / "robert_downey_jr_pcavs_741400163.mp4", 0, 346, 10.0),
    # their longest stretches with one blink are 9.76 s and 9.04 s: finetune's 10-s floor lowered for them alone
    ("Fei-Fei Li", DATA / "corpus" / "fei_fei_li_styletalk_clip2.mp4", 57, 244, 9.5),
    ("Ronald Reagan", DATA / "corpus" / "ronald_reagan_styletalk_clip1.mp4", 426, 226, 9.0),
    # a fifth (session 29): Robert Downey Jr.'s stretch is behind pink-tinted lenses, where Face Mesh reads his own
    # real blink at 0.42 of open (his other corpus clip, without glasses: 0.15-0.39), so the lid measure cannot see
    # his eyes shut; of the other corpus clips, the bald man's 8.0 s is the longest stretch with at most one blink
    ("bald man", DATA / "corpus" / "bald_man_capitol_infinitetalk_ref_video.mp4", 118, 199, 7.9),
]


def measure(code: Path, work: Path) -> dict:
    """Child process: finetune, speak and read the eyes for every person with the talkface in `code`."""
    sys.path.insert(0, str(code))
    os.environ.setdefault("TALKFACE_QUIET", "1")
    from talkface.config import FinetuneConfig, SpeakConfig
    from talkface.face.topology import eye_openness, mouth_openness
    from talkface.face.tracker import FaceMeshTracker, track_video
    from talkface.finetune import finetune
    from talkface.media import load_audio, read_frames
    from talkface.media.audio import Audio, write_audio
    from talkface.signals import blink_frames
    from talkface.speak import speak

    work.mkdir(parents=True, exist_ok=True)
    speech = work / "speech_30s.wav"
    if not speech.exists():
        audio = load_audio(SPEECH)
        write_audio(speech, Audio(audio.samples[: int(SECONDS * audio.sample_rate)], audio.sample_rate))
    rows = {}
    for name, clip, first, length, shortest in PEOPLE:
        slug = name.split()[0].lower()
        stretch = work / f"{slug}_{first}_{length}.mp4"
        if not stretch.exists():
            excerpt(clip, first, length, stretch)
        clip_open = eye_openness(track_video(stretch).landmarks)
        clip_blinks = blink_frames(clip_open)
        started = time.perf_counter()
        profile = finetune(stretch, work / f"{slug}_{first}_{length}_profile", FinetuneConfig(min_seconds=shortest))
        finetune_s = time.perf_counter() - started
        out = work / f"{slug}.mp4"
        result = speak(speech, out, profile, SpeakConfig(blink_rate=BLINK_RATE, seed=0))
        wanted = blink_frames(eye_openness(result.motion.landmarks))
        openness, mouth = [], []
        with FaceMeshTracker() as tracker:
            for frame in read_frames(out):
                faces = tracker.process(frame)
                openness.append(float(eye_openness(faces[0][None])[0]) if faces else np.nan)
                mouth.append(float(mouth_openness(faces[0][None])[0]) if faces else np.nan)
        openness = np.array(openness)
        away = np.ones(len(openness), bool)
        for a, b in wanted:
            away[max(a - 3, 0) : b + 4] = False
        open_height = float(np.nanmedian(openness[away]))
        depths, deepest = [], []
        for a, b in wanted:
            window = openness[max(a - 2, 0) : b + 3]
            if np.isfinite(window).any():
                depths.append(float(np.nanmin(window) / open_height))
                deepest.append(int(max(a - 2, 0) + np.nanargmin(window)))
            else:
                depths.append(float("nan"))
                deepest.append(a)
        depths_arr = np.array(depths)
        rows[name] = {
            "clip frames": length,
            "clip blinks": len(clip_blinks),
            "clip blink depth": [round(float(np.nanmin(clip_open[a : b + 1]) / np.nanmedian(clip_open)), 2) for a, b in clip_blinks],
            "finetune (s)": round(finetune_s, 1),
            "speak (frames/s)": round(result.frames_per_second, 1),
            "motion blinks": len(wanted),
            "shut (< 0.4)": int((depths_arr < CLOSED).sum()),
            "stare (> 0.6)": int((depths_arr > STARE).sum()),
            "median depth": round(float(np.nanmedian(depths_arr)), 3),
            "worst depth": round(float(np.nanmax(depths_arr)), 3),
            "depths": [round(d, 3) for d in depths],
            "deepest frames": deepest,
            "open frame": int(np.flatnonzero(away)[len(np.flatnonzero(away)) // 2]),
            "video": str(out),
            "face found": round(float(np.isfinite(openness).mean()), 3),
            **mouth_follows(mouth_openness(result.motion.landmarks), np.array(mouth)),
        }
        rows[name].update(spreads(stretch, out))
        rows[name]["languages"] = languages(profile)
        print(name, {k: v for k, v in rows[name].items() if k not in ("depths", "deepest frames", "languages")}, flush=True)
    rows["held out"] = held_out_mouth(work)
    print("held out", rows["held out"], flush=True)
    return rows


def mouth_follows(motion: np.ndarray, video: np.ndarray) -> dict:
    """How far the video's mouth (Face Mesh: inner-lip gap over mouth width, per frame) opens as the
    motion's (the same measure on the motion's landmarks): the slope of a line fitted to video
    against motion (1: the picture opens as asked), the ratio of their spreads, their r."""
    n = min(len(motion), len(video))
    motion, video = motion[:n], video[:n]
    both = np.isfinite(motion) & np.isfinite(video)
    motion, video = motion[both], video[both]
    return {"mouth video / motion (slope)": round(float(np.polyfit(motion, video, 1)[0]), 2),
            "mouth video / motion (spread)": round(float(video.std() / motion.std()), 2),
            "mouth r (video, motion)": round(float(np.corrcoef(motion, video)[0, 1]), 3)}


def spreads(clip: Path, video: Path) -> dict:
    """Brow and mouth spread (Face Mesh) of `video` over those of `clip`."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from realism import brow_height

    from talkface.face import topology
    from talkface.face.tracker import track_video

    real, made = track_video(clip), track_video(video)
    brows = float(np.nanstd(brow_height(made.raw_landmarks)) / np.nanstd(brow_height(real.raw_landmarks)))
    mouth = float(np.nanstd(topology.mouth_openness(made.landmarks)) / np.nanstd(topology.mouth_openness(real.landmarks)))
    return {"brow spread": round(brows, 2), "mouth spread": round(mouth, 2)}


_FEATURES: dict = {}


def languages(profile) -> dict:
    """Per recording in ../shared/data/audio: the motion's mouth and brow spread over the clip's (face model)."""
    from talkface.audio import extract
    from talkface.media import load_audio
    from talkface.motion.brows import brow_height
    from talkface.motion.lips import frontal_mouth_opening

    clip = profile.clip_fit.expression[profile.clip_fit.valid]
    mouth, brows = frontal_mouth_opening(profile.face, clip).std(), brow_height(profile.face, clip).std()
    found = {}
    for audio in sorted((DATA / "audio").iterdir()):
        key = (audio.name, profile.feature_set)
        if key not in _FEATURES:
            _FEATURES[key] = extract(load_audio(audio), profile.feature_set)
        expression = profile.motion.predict_expression(_FEATURES[key])
        found[audio.stem] = [round(float(frontal_mouth_opening(profile.face, expression).std() / mouth), 2),
                             round(float(brow_height(profile.face, expression).std() / brows), 2)]
    return found


def held_out_mouth(work: Path) -> dict:
    """The congressman (never seen by a shipped model), finetuned on his first frames, saying his own
    next ones: the video's mouth against the real one's (Face Mesh)."""
    from talkface.config import FinetuneConfig, SpeakConfig
    from talkface.face import topology
    from talkface.face.tracker import track_video
    from talkface.finetune import finetune
    from talkface.media import load_audio
    from talkface.media.audio import Audio, write_audio
    from talkface.motion.model import shift_features
    from talkface.signals import pearson
    from talkface.speak import speak

    clip, train, test = HELD_OUT
    first, rest = work / f"{clip.stem}_0_{train}.mp4", work / f"{clip.stem}_{train}_{test}.mp4"
    for path, start, length in ((first, 0, train), (rest, train, test)):
        if not path.exists():
            excerpt(clip, start, length, path)
    started = time.perf_counter()
    profile = finetune(first, work / f"{clip.stem}_profile", FinetuneConfig())
    finetune_s = time.perf_counter() - started
    sound = work / f"{clip.stem}_own_speech.wav"
    audio = load_audio(rest)
    write_audio(sound, Audio(audio.samples, audio.sample_rate))
    out = work / f"{clip.stem}_says.mp4"
    motion = speak(sound, out, profile, SpeakConfig(seed=0)).motion
    made, real = topology.mouth_openness(track_video(out).landmarks), topology.mouth_openness(track_video(rest).landmarks)
    follows = mouth_follows(topology.mouth_openness(motion.landmarks), made)
    real = shift_features(real[:, None], -profile.motion.offset_frames)[:, 0]  # frame t: the real mouth at t + the recording's offset
    n = min(len(made), len(real))
    both = np.isfinite(made[:n]) & np.isfinite(real[:n])
    return {"finetune (s)": round(finetune_s, 1), "mouth spread (video / real)": round(float(np.nanstd(made[:n]) / np.nanstd(real[:n])), 2),
            "mouth r (video, real)": round(pearson(made[:n][both], real[:n][both]), 3), **follows,
            **{f"{k} (clip)": v for k, v in spreads(first, out).items()}, "languages": languages(profile)}


def excerpt(clip: Path, first: int, length: int, out: Path) -> None:
    """Frames [first, first + length) of `clip` with its sound (from the .wav beside it where the
    corpus keeps the sound apart), as an mp4 (CRF 16)."""
    import itertools

    from talkface.media import load_audio
    from talkface.media.audio import Audio
    from talkface.media.video import read_frames_from, write_video

    fps = 25
    sound = load_audio(clip.with_suffix(".wav") if clip.with_suffix(".wav").exists() else clip, 48000)
    start, stop = int(first / fps * sound.sample_rate), int((first + length) / fps * sound.sample_rate)
    frames = (frame for _, frame in itertools.islice(read_frames_from(clip, first, fps), length))
    write_video(out, frames, fps, Audio(sound.samples[start:stop], sound.sample_rate), crf=16)


def crops(results: dict, path: Path) -> None:
    """Per person and mode: the eyes at 100% open, at the deepest frame of the median blink and
    of the least deep one, side by side."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from talkface.face.tracker import FaceMeshTracker
    from talkface.media import read_frames_at

    lines = []
    for mode, rows in results.items():
        for name, row in rows.items():
            if name == "held out":
                continue
            depths = np.array(row["depths"])
            order = np.argsort(np.where(np.isfinite(depths), depths, np.inf))
            median = int(order[len(order) // 2]) if len(order) else 0
            worst = int(np.nanargmax(depths)) if np.isfinite(depths).any() else 0
            wanted = [row["open frame"], row["deepest frames"][median], row["deepest frames"][worst]]
            frames = read_frames_at(row["video"], wanted)
            tiles = []
            with FaceMeshTracker() as tracker:
                for index in wanted:
                    frame = frames[index]
                    faces = tracker.process(frame)
                    eyes = faces[0][[33, 133, 263, 362, 159, 386, 145, 374, 70, 300], :2] if faces else np.array([[0, 0], frame.shape[1::-1]])
                    x0, y0 = eyes.min(0)
                    x1, y1 = eyes.max(0)
                    grow = 0.25 * (x1 - x0)
                    tile = frame[int(max(y0 - grow, 0)) : int(y1 + grow), int(max(x0 - grow, 0)) : int(x1 + grow)]
                    tiles.append(tile)  # at 100%
            height = max(t.shape[0] for t in tiles)
            tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 4), (0, 0))) for t in tiles]
            line = np.hstack(tiles)
            label = np.full((18, line.shape[1], 3), 255, np.uint8)
            cv2.putText(label, f"{mode}: {name} (open | median blink | least deep blink)", (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
            lines.append(np.vstack([label, line]))
    width = max(line.shape[1] for line in lines)
    sheet = np.vstack([np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the commit measured as `before`")
    parser.add_argument("--base", default=BASE, help="the commit measured as `base`")
    parser.add_argument("--previous", default=PREVIOUS, help="the commit measured as `previous`")
    parser.add_argument("--modes", default="before,base,previous,after")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "eyelids")
    parser.add_argument("--reuse", default="", help="modes whose results of an earlier run (WORK/MODE.json) are shown again, not measured")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # child: the code to measure
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.result.write_text(json.dumps(measure(args.one, args.work)))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from report import RESULTS, markdown_table, save_results

    started = time.perf_counter()
    results = {}
    for mode in args.modes.split(","):
        if mode in args.reuse.split(","):
            results[mode] = json.loads((args.work / f"{mode}.json").read_text())
            continue
        code = ROOT
        if mode in ("before", "base", "previous"):
            code = args.work / f"{mode}_code"
            if not code.exists():
                code.mkdir(parents=True)
                archive = subprocess.run(["git", "-C", str(ROOT), "archive", getattr(args, mode)], check=True, capture_output=True).stdout
                subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
        result = args.work / f"{mode}.json"
        env = {**os.environ, "PYTHONPATH": str(code)}
        subprocess.run([sys.executable, __file__, "--one", str(code), "--work", str(args.work / mode), "--result", str(result)], check=True, cwd=code, env=env)
        results[mode] = json.loads(result.read_text())
    for mode, rows in results.items():  # results of earlier runs without the spreads: read from their videos
        for name, row in rows.items():
            if name != "held out" and "brow spread" not in row:
                slug, (_, _, first, length, _) = name.split()[0].lower(), next(p for p in PEOPLE if p[0] == name)
                row.update(spreads(args.work / mode / f"{slug}_{first}_{length}.mp4", Path(row["video"])))
    crops(results, RESULTS / "eyelids_crops.jpg")
    table, spoken, held = [], [], []
    for mode, rows in results.items():
        for name, row in rows.items():
            if name == "held out":
                held.append({"mode": mode, **{k: v for k, v in row.items() if k != "languages"}})
                if "languages" in row:
                    spoken.append({"mode": mode, "person": "congressman (held out)", **{k: f"{m} / {b}" for k, (m, b) in row["languages"].items()}})
                continue
            table.append({"mode": mode, "person": name, **{k: v for k, v in row.items() if k not in ("depths", "deepest frames", "open frame", "video", "languages")}})
            if "languages" in row:
                spoken.append({"mode": mode, "person": name, **{k: f"{m} / {b}" for k, (m, b) in row["languages"].items()}})
    header = (
        "# Eyes that close on people whose clip shows almost no blink\n\n"
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s in all. "
        f"Command: `python benchmarks/eyelids.py --before {args.before} --base {args.base} --previous {args.previous} --modes {args.modes}`"
        + (f" (`{args.reuse}` from an earlier run of the same command, reused with --reuse)" if args.reuse else "") + ".\n\n"
        + __doc__.split("\n\n", 1)[1].split("Usage:")[0]
    )
    text = header + "\n" + markdown_table(table) + "\n\n![crops](eyelids_crops.jpg)\n"
    if spoken:
        text += "\n## The motion on every recording (mouth / brows, spread over the clip's; face model, before rendering)\n\n" + markdown_table(spoken) + "\n"
    if held:
        text += "\n## A person no model saw, saying his own next 30 s (congressman_d_60s.mp4)\n\n" + markdown_table(held) + "\n"
    save_results("eyelids", text, {"results": results})


if __name__ == "__main__":
    main()
