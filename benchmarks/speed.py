"""Benchmark: where finetune and speak spend their time, before and after the speed work.

One run measures both, on the same machine, one after the other (never at the same time):
- before: talkface as it was before this work (the commit given by --before, extracted with
  `git archive` and run from there);
- after: this checkout, with its defaults.

For each: a standard finetune of the refine benchmark's clip (the first 15 s of
obama_weekly_20s.mp4, 450x450) with each stage timed, the refiner's face PSNR on the clip's
last 5 s drawn in place (`render --onto`: the refine benchmark's `refined` row, 32.2 dB
before), and a refined `speak` of 30 s of English, stage by stage. Then, for `after`, the
latency of `speak --out -` from the command's start to the first video fragment on stdout.

`heldout` (in --modes) measures this checkout on a clip no setting was tuned on: the first
20 s of congressman_d_60s.mp4 (256x256) finetuned, its next 10 s drawn in place for face
PSNR, and the same 30 s of speech spoken; plus the whole `speak` command's wall time there.
`clip512` finetunes all 20 s of obama_weekly_20s.mp4 upscaled to 512x512 (the size issue 38
names; no shared clip has it) and speaks the 30 s of speech at that size (the whole command
timed too); `before512` does the same with talkface at the commit given by --today (before the
refiner pretrained across the corpus), so one run holds today's figures beside the new ones.

Usage: python benchmarks/speed.py [--before REV] [--today REV] [--modes before,after,heldout,before512,clip512] [--device auto]
       [--features mfcc+whisper] [--results speed]  (speed_cuda: the same on a GPU machine)
Writes benchmarks/results/speed.md and speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
BASELINE = "a97b6b2"  # talkface before the speed work (the last commit of the session before it)
TODAY = "2d01cca"  # talkface before the pretrained refiner (issue 38's "today"): `before512`
DATA = ROOT.parent / "shared" / "data"
SPEECH = DATA / "audio" / "english_45s.mp3"
SPEECH_SECONDS = 30
# finetune's stages, by the function that does each (module attribute names in talkface.finetune)
FINETUNE_STAGES = {
    "track + reconstruct": "track",
    "audio features": "_clip_features",
    "audio->motion model": "train_motion_model",
    "clip frames stored": "_store_clip_frames",
    "person mattes + room plate": "_store_clip_mattes",
    "eye and mouth memories": "_store_region",
    "turn gain": "_measure_turn_gain",
    "refiner training pairs": "prepare_pairs",
    "refiner training": "train_refiner",
}
# stages timed inside another's function: taken out of that one's time (clip frames stored makes the mattes and plate)
FINETUNE_NESTED = {"person mattes + room plate": "clip frames stored"}
# speak's stages: (module, attribute, label); times summed over both threads (frames are made in
# one while the other encodes), so they can add up to more than the wall time
SPEAK_STAGES = [
    ("talkface.speak", "load_profile", "load profile"),
    ("talkface.speak", "load_audio", "decode audio"),
    ("talkface.speak", "extract", "audio features"),
    ("talkface.speak", "generate_motion", "motion"),
    ("talkface.render.frames", "FrameStore.__getitem__", "background frames (JPEG)"),
    ("talkface.render.composite", "FaceCompositor.composite", "coarse render (rasterize, texture, blend)"),  # before the kept skin
    ("talkface.render.composite", "FaceCompositor.composite_keeping", "coarse render (rasterize, texture, blend)"),  # what speak calls since
    ("talkface.refine.model", "Refiner.refine", "refiner, all of it (crops, memory, network, paste)"),
    ("talkface.refine.model", "Refiner.prepare", "refiner: crops + memory read"),
    ("talkface.refine.model", "Refiner._correction", "refiner: network"),
    ("talkface.refine.crop", "FaceCrop.paste_difference", "refiner: paste back"),
    ("talkface.media.video", "_encode_frame", "encode video (x264)"),
    ("talkface.media.video", "_mux_audio", "encode audio (AAC)"),
]


@contextmanager
def timed_functions(targets: list[tuple[str, str, str]], timings: dict):
    """Wrap functions and methods (module, 'name' or 'Class.method', label) to sum their time."""
    import importlib
    import threading

    lock = threading.Lock()
    restore = []
    for module_name, attribute, label in targets:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name, None)
        if original is None:  # not in this version of talkface (the stage is part of another)
            continue

        def wrapper(*args, _original=original, _label=label, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                with lock:
                    timings[_label] = timings.get(_label, 0.0) + time.perf_counter() - started

        setattr(owner, name, wrapper)
        restore.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in restore:
            setattr(owner, name, original)


def run_finetune(train: Path, folder: Path, device: str, features: str) -> tuple[dict, object]:
    import talkface.finetune as finetune_module
    from talkface.config import FinetuneConfig

    timings: dict = {}
    started = time.perf_counter()
    with timed_functions([("talkface.finetune", name, label) for label, name in FINETUNE_STAGES.items()], timings):
        profile = finetune_module.finetune(train, folder, FinetuneConfig(preset="standard", features=features, use_generic=features == "mfcc+whisper"), device=device)
    total = time.perf_counter() - started
    for inner, outer in FINETUNE_NESTED.items():
        if inner in timings and outer in timings:
            timings[outer] -= timings[inner]
    stages = {label: round(timings.get(label, 0.0), 1) for label in FINETUNE_STAGES}
    stages["other"] = round(total - sum(timings.values()), 1)
    stages["total"] = round(total, 1)
    return stages, profile


def face_psnr(profile, test: Path, folder: Path, device: str) -> dict:
    """The refine benchmark's `refined` row: the test part's tracked motion drawn onto its own frames."""
    from talkface.evaluate import evaluate
    from talkface.media import load_audio
    from talkface.output import render_video
    from talkface.track import track_in_profile

    motion = track_in_profile(test, profile.folder)
    video = render_video(profile, motion, folder / "onto.mp4", load_audio(test), device, True, onto=test)
    comparison = evaluate(video, test).comparison
    return {"face_psnr_db": round(comparison.psnr_face, 2), "ssim_face": round(comparison.ssim_face, 4)}


def run_speak(profile, speech: Path, folder: Path, device: str) -> tuple[dict, float, int]:
    from talkface.config import SpeakConfig
    from talkface.speak import speak

    timings: dict = {}
    started = time.perf_counter()
    with timed_functions(SPEAK_STAGES, timings):
        result = speak(speech, folder / "speak.mp4", profile.folder, SpeakConfig(), device)
    wall = time.perf_counter() - started
    stages = {label: round(timings[label], 2) if label in timings else "" for _, _, label in SPEAK_STAGES}
    stages["wall"] = round(wall, 2)
    return stages, wall, result.n_frames


def _child_env(code: Path = ROOT) -> dict:
    """The environment of a `talkface` child process: `code` (this checkout) first on the import path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}


def stream_latency(profile_folder: Path, speech: Path) -> dict:
    """`speak --out -` as a user pipes it: seconds from the command's start to the header and
    to the first fragment (playable frames) on stdout, and to the end."""
    command = [sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(profile_folder), "--out", "-"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=_child_env())
    data, first_byte, first_fragment = b"", None, None
    while True:
        chunk = process.stdout.read1(65536)
        if not chunk:
            break
        data += chunk
        first_byte = first_byte or time.perf_counter() - started
        if first_fragment is None and b"moof" in data:
            first_fragment = time.perf_counter() - started
    process.wait()
    return {
        "first_bytes_s": round(first_byte or -1, 2),
        "first_fragment_s": round(first_fragment or -1, 2),
        "whole_video_s": round(time.perf_counter() - started, 2),
        "fragments": data.count(b"moof"),
        "megabytes": round(len(data) / 1e6, 2),
    }


def measure(mode: str, code: Path, scratch: Path, device: str, features: str) -> dict:
    """One mode, in this process, with talkface imported from `code`."""
    sys.path.insert(0, str(code))
    import talkface

    assert Path(talkface.__file__).resolve().is_relative_to(code.resolve()), talkface.__file__
    folder = scratch / f"profile_{mode}"
    if mode in ("clip512", "before512"):
        finetune_stages, profile = run_finetune(scratch / "clip512.mp4", folder, device, features)
        refiner = profile.info.refiner
        speak_stages, wall, n_frames = run_speak(profile, scratch / "speech30.wav", folder, device)
        return {
            "finetune": {"mode": mode, **finetune_stages, "refiner_steps": refiner.get("steps")},
            "quality": {"mode": mode, "validation_psnr_db": refiner.get("validation", {}).get("face_psnr_refined_db")},
            "speak": {"mode": mode, **speak_stages, "frames": n_frames, "frames_per_s": round(n_frames / wall, 1), "wall_over_audio": round(wall / SPEECH_SECONDS, 2),
                      "whole_command_s": command_wall(profile.folder, scratch / "speech30.wav", folder, code=code)},
            "profile": str(profile.folder),
        }
    prefix = "heldout_" if mode == "heldout" else ""
    finetune_stages, profile = run_finetune(scratch / f"{prefix}train.mp4", folder, device, features)
    refiner = profile.info.refiner if hasattr(profile, "info") else {}
    quality = face_psnr(profile, scratch / f"{prefix}test.mp4", folder, device)
    speak_stages, wall, n_frames = run_speak(profile, scratch / "speech30.wav", folder, device)
    return {
        "finetune": {"mode": mode, **finetune_stages, "refiner_steps": refiner.get("steps")},
        "quality": {"mode": mode, **quality, "validation_psnr_db": refiner.get("validation", {}).get("face_psnr_refined_db")},
        "speak": {"mode": mode, **speak_stages, "frames": n_frames, "frames_per_s": round(n_frames / wall, 1), "wall_over_audio": round(wall / SPEECH_SECONDS, 2)},
        "profile": str(profile.folder),
    }


def split_heldout(folder: Path) -> None:
    """heldout_train.mp4 (congressman_d_60s.mp4's first 20 s) and heldout_test.mp4 (the next 10 s)."""
    from talkface.media import Audio, load_audio, read_frames, write_video

    clip = DATA / "video" / "congressman_d_60s.mp4"
    frames, audio = list(read_frames(clip))[:750], load_audio(clip)
    rate = audio.sample_rate
    write_video(folder / "heldout_train.mp4", frames[:500], 25, Audio(audio.samples[: 20 * rate], rate))
    write_video(folder / "heldout_test.mp4", frames[500:750], 25, Audio(audio.samples[20 * rate : 30 * rate], rate))


def upscale_clip(folder: Path) -> None:
    """clip512.mp4: all of obama_weekly_20s.mp4 (20 s, 450x450) upscaled to 512x512, with its sound."""
    import cv2

    from talkface.media import load_audio, read_frames, write_video

    clip = DATA / "video" / "obama_weekly_20s.mp4"
    frames = (cv2.resize(frame, (512, 512), interpolation=cv2.INTER_CUBIC) for frame in read_frames(clip))
    write_video(folder / "clip512.mp4", frames, 25, load_audio(clip), crf=12)


def command_wall(profile_folder: Path, speech: Path, folder: Path, repeats: int = 2, code: Path = ROOT) -> list[float]:
    """Seconds of the whole `talkface speak` command (start-up, imports and all), writing a file."""
    command = [sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(profile_folder), "--out", str(folder / "cli.mp4")]
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=code, env=_child_env(code))
        walls.append(round(time.perf_counter() - started, 2))
    return walls


def write_speech(path: Path) -> None:
    """The first SPEECH_SECONDS of SPEECH, as a WAV file at `path`."""
    from talkface.media import Audio, load_audio, write_audio

    audio = load_audio(SPEECH)
    write_audio(path, Audio(audio.samples[: SPEECH_SECONDS * audio.sample_rate], audio.sample_rate))


def extract_talkface(revision: str, folder: Path) -> None:
    """talkface's package as it was at `revision` (git archive), extracted into the new `folder`."""
    folder.mkdir()
    archive = subprocess.run(["git", "archive", revision, "talkface"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BASELINE, help="the commit to measure as `before`")
    parser.add_argument("--today", default=TODAY, help="the commit to measure as `before512` (talkface before the pretrained refiner)")
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--features", default="mfcc+whisper", help="finetune's audio features (mfcc where the Whisper weights are not installed)")
    parser.add_argument("--results", default="speed", help="results file name (benchmarks/results/NAME.md and .json)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: measure this mode
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report-only", action="store_true", help="rewrite speed.md from speed.json without measuring")
    args = parser.parse_args()
    if args.one:
        args.result.write_text(json.dumps(measure(args.one, args.code, args.scratch, args.device, args.features)))
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from talkface.device import resolve_device
    from refine import split_clip
    from report import RESULTS

    if args.report_only:
        saved = json.loads((RESULTS / f"{args.results}.json").read_text())
        report({part: saved[part] for part in ("finetune", "quality", "speak")}, saved.get("stream", {}), saved.get("device", "cpu"), args)
        return

    device = resolve_device(args.device)
    results = {}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        split_clip(scratch)
        if "heldout" in args.modes.split(","):
            split_heldout(scratch)
        if {"clip512", "before512"} & set(args.modes.split(",")):
            upscale_clip(scratch)
        write_speech(scratch / "speech30.wav")
        codes = {"before": (scratch / "before_code", args.before), "before512": (scratch / "today_code", args.today)}
        for mode, (baseline, revision) in codes.items():
            if mode in args.modes.split(","):
                extract_talkface(revision, baseline)
        for mode in args.modes.split(","):
            code = codes[mode][0] if mode in codes else ROOT
            result = scratch / f"{mode}.json"
            command = [sys.executable, __file__, "--one", mode, "--code", str(code), "--scratch", str(scratch), "--result", str(result), "--device", device, "--features", args.features]
            subprocess.run(command, check=True, cwd=scratch)
            results[mode] = json.loads(result.read_text())
        latency = {}
        if "after" in results:
            profile_folder = Path(results["after"]["profile"])
            latency = stream_latency(profile_folder, scratch / "speech30.wav")
            latency["whole_command_to_a_file_s"] = command_wall(profile_folder, scratch / "speech30.wav", scratch)
        if "heldout" in results:
            results["heldout"]["speak"]["whole_command_s"] = command_wall(Path(results["heldout"]["profile"]), scratch / "speech30.wav", scratch)
    saved = json.loads((RESULTS / f"{args.results}.json").read_text()) if (RESULTS / f"{args.results}.json").exists() else {}
    latency = latency or saved.get("stream", {})  # `after` not run: its streaming figures are kept too
    for kept in ("before", "after", "heldout", "before512", "clip512"):  # keep the last measured rows of the modes not run
        earlier = {part: [dict(row, mode=row["mode"] if row["mode"].endswith("(earlier run)") else f"{row['mode']} (earlier run)") for row in saved.get(part, []) if row["mode"].removesuffix(" (earlier run)") == kept] for part in ("finetune", "quality", "speak")}
        if kept not in results and all(earlier.values()):
            results[kept] = {part: earlier[part][0] for part in earlier}
    order = {"before": 0, "after": 1, "heldout": 2, "before512": 3, "clip512": 4}
    results = dict(sorted(results.items(), key=lambda item: order.get(item[0], 3)))
    rows = {part: [results[mode][part] for mode in results] for part in ("finetune", "quality", "speak")}
    report(rows, latency, device, args)


def report(rows: dict, latency: dict, device: str, args) -> None:
    from talkface import __version__
    from talkface.device import use_bfloat16
    from report import markdown_table, save_results

    for row in rows["speak"]:  # a stage timed as 0 had no function of its own in that version
        row.update({k: "" for k, v in row.items() if v == 0.0 and k != "mode"})
    bf16 = use_bfloat16(device)
    gpu = ""
    if device == "cuda":
        import torch

        gpu = f" ({torch.cuda.get_device_name()}, torch {torch.__version__})"
    markdown = (
        f"# Speed: finetune and speak, stage by stage\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPU cores, device {device}{gpu} (bfloat16 convolutions available: {bf16}), audio features {args.features}. "
        f"Command of the last run: `python benchmarks/speed.py --before {args.before} --today {args.today} --modes {args.modes} --device {args.device} "
        f"--features {args.features} --results {args.results}`.\n\n"
        f"before: talkface at commit {args.before} (before the speed work); after: this checkout with its defaults. "
        "Each runs in its own process, one after the other; a row marked `(earlier run)` is kept from the previous "
        "run of this script on this machine.\n\n"
        "## finetune (standard preset), first 15 s of obama_weekly_20s.mp4 (450x450), seconds\n\n"
        "`heldout`: the first 20 s of congressman_d_60s.mp4 (256x256) instead, with this checkout; its quality row is "
        "the face PSNR of its next 10 s drawn in place. `clip512`: all 20 s of obama_weekly_20s.mp4 upscaled to 512x512, "
        f"then the same 30 s of speech spoken at 512x512; its quality row is the refiner's held-out PSNR (the clip's last 15 %, "
        f"kept out of training). `before512`: the same with talkface at commit {args.today} (before the pretrained refiner).\n\n"
        + markdown_table(rows["finetune"])
        + "\n\n## Quality: face PSNR of the refined render on the clip's unseen last 5 s (the refine benchmark's `refined` row)\n\n"
        + markdown_table(rows["quality"])
        + f"\n\n## speak, refined, {SPEECH_SECONDS} s of English (`{SPEECH.name}`)\n\n"
        "Seconds inside each stage's function. Stages of `after` run in three threads (compositing, refining, "
        "encoding) and overlap, so they add up to more than the wall time; an empty cell: the stage has no function "
        "of its own in that version.\n\n"
        + markdown_table(rows["speak"])
        + "\n\n## The whole command, and streaming: `talkface speak` run as a user runs it (start-up and imports included); "
        "`--out -` writes fragmented MP4 to stdout; seconds from the command's start. "
        f"whole_command_to_a_file_s: two runs of `talkface speak --out FILE` on the same {SPEECH_SECONDS} s\n\n"
        + (markdown_table([latency]) if latency else "not measured")
        + "\n"
    )
    save_results(args.results, markdown, {"version": __version__, **rows, "stream": latency, "device": device})


if __name__ == "__main__":
    main()
