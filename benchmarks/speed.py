"""Benchmark: where finetune and speak spend their time, before and after the speed work.

One run measures both settings on the same machine:
- before: the refiner's convolutions in float32 and its full step count (what talkface did
  before bfloat16 and early stopping), compositing as before is not switchable, so "before"
  speak differs only in the refiner's precision;
- after: the defaults.

For each: a standard finetune of the refine benchmark's clip (the first 15 s of
obama_weekly_20s.mp4, 450x450) with each stage timed, the refiner's face PSNR on the clip's
last 5 s drawn in place (`render --onto`, the refine benchmark's `refined` row), and
`speak` of 30 s of English, stage by stage (seconds inside each stage's function). Then the latency of
`speak --out -` from the command's start to the first video fragment on stdout.

Usage: python benchmarks/speed.py [--modes before,after] [--device auto]
Writes benchmarks/results/speed.md and speed.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from talkface import __version__  # noqa: E402
import talkface.finetune as finetune_module  # noqa: E402
from talkface.config import REFINER_PRESETS, FinetuneConfig, SpeakConfig  # noqa: E402
from talkface.device import resolve_device, use_bfloat16  # noqa: E402
from talkface.evaluate import evaluate  # noqa: E402
from talkface.media import Audio, load_audio, write_audio  # noqa: E402
from talkface.output import render_video  # noqa: E402
from talkface.profile import load_profile  # noqa: E402
from talkface.speak import speak  # noqa: E402
from talkface.track import track_in_profile  # noqa: E402

from refine import split_clip  # noqa: E402
from report import markdown_table, save_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SPEECH = DATA / "audio" / "english_45s.mp3"
SPEECH_SECONDS = 30
# finetune's stages, by the function that does each (module attribute names in talkface.finetune)
FINETUNE_STAGES = {
    "track + reconstruct": "track",
    "audio features": "_clip_features",
    "audio->motion model": "train_motion_model",
    "clip frames stored": "_store_clip_frames",
    "refiner training pairs": "prepare_pairs",
    "refiner training": "train_refiner",
}
# speak's stages: (module, attribute, label); times summed over both threads (frames are made in
# one while the other encodes), so they can add up to more than the wall time
SPEAK_STAGES = [
    ("talkface.speak", "load_profile", "load profile"),
    ("talkface.speak", "load_audio", "decode audio"),
    ("talkface.speak", "extract", "audio features"),
    ("talkface.speak", "generate_motion", "motion"),
    ("talkface.render.frames", "FrameStore.__getitem__", "background frames (JPEG)"),
    ("talkface.render.composite", "FaceCompositor.composite", "coarse render (rasterize, texture, blend)"),
    ("talkface.refine.model", "Refiner._inputs", "refiner: crops + memory read"),
    ("talkface.refine.model", "Refiner._correction", "refiner: network"),
    ("talkface.refine.crop", "FaceCrop.paste_difference", "refiner: paste back"),
    ("talkface.media.video", "_encode_frame", "encode video (x264)"),
    ("talkface.media.video", "_mux_audio", "encode audio (AAC)"),
]


@contextmanager
def precision_set(precision: str):
    """Run with TALKFACE_PRECISION set (how a user forces fp32 or bf16)."""
    before = os.environ.get("TALKFACE_PRECISION")
    os.environ["TALKFACE_PRECISION"] = precision
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TALKFACE_PRECISION", None)
        else:
            os.environ["TALKFACE_PRECISION"] = before


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
        original = getattr(owner, name)

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


@contextmanager
def timed_stages(timings: dict):
    """Time finetune's stage functions by wrapping them where finetune looks them up."""
    originals = {}
    for label, name in FINETUNE_STAGES.items():
        original = getattr(finetune_module, name)
        originals[name] = original

        def wrapper(*args, _original=original, _label=label, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings[_label] = timings.get(_label, 0.0) + time.perf_counter() - started

        setattr(finetune_module, name, wrapper)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(finetune_module, name, original)


def run_finetune(train: Path, folder: Path, mode: str, device: str) -> tuple[dict, object]:
    refiner = REFINER_PRESETS["standard"]
    if mode == "before":
        from dataclasses import replace

        refiner = replace(refiner, precision="fp32", patience=0)
    timings: dict = {}
    started = time.perf_counter()
    with timed_stages(timings):
        profile = finetune_module.finetune(train, folder, FinetuneConfig(preset="standard"), device=device, refiner_config=refiner)
    total = time.perf_counter() - started
    stages = {label: round(timings.get(label, 0.0), 1) for label in FINETUNE_STAGES}
    stages["other"] = round(total - sum(timings.values()), 1)
    stages["total"] = round(total, 1)
    return stages, profile


def face_psnr(profile, test: Path, folder: Path, device: str, precision: str) -> dict:
    """The refine benchmark's `refined` row: the test part's tracked motion drawn onto its own frames."""
    motion = track_in_profile(test, profile.folder)
    with precision_set(precision):
        video = render_video(profile, motion, folder / "onto.mp4", load_audio(test), device, True, onto=test)
    comparison = evaluate(video, test).comparison
    return {"face_psnr_db": round(comparison.psnr_face, 2), "ssim_face": round(comparison.ssim_face, 4)}


def run_speak(profile, speech: Path, folder: Path, device: str, precision: str) -> tuple[dict, float, int]:
    timings: dict = {}
    started = time.perf_counter()
    with precision_set(precision), timed_functions(SPEAK_STAGES, timings):
        result = speak(speech, folder / "speak.mp4", profile.folder, SpeakConfig(), device)
    wall = time.perf_counter() - started
    stages = {label: round(timings.get(label, 0.0), 2) for _, _, label in SPEAK_STAGES}
    stages["wall"] = round(wall, 2)
    return stages, wall, result.n_frames


def stream_latency(profile_folder: Path, speech: Path) -> dict:
    """`speak --out -` as a user pipes it: seconds from the command's start to the header and
    to the first fragment (playable frames) on stdout, and to the end."""
    command = [sys.executable, "-m", "talkface", "speak", "--audio", str(speech), "--person", str(profile_folder), "--out", "-"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    modes = args.modes.split(",")
    rows_finetune, rows_speak, rows_quality, latency = [], [], [], {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train, test = split_clip(folder)
        audio = load_audio(SPEECH)
        speech = write_audio(folder / "speech30.wav", Audio(audio.samples[: SPEECH_SECONDS * audio.sample_rate], audio.sample_rate))
        for mode in modes:
            precision = "fp32" if mode == "before" else "auto"
            stages, profile = run_finetune(train, folder / f"profile_{mode}", mode, device)
            refiner = profile.info.refiner
            rows_finetune.append({"mode": mode, **stages, "refiner_steps": refiner["steps"]})
            rows_quality.append({"mode": mode, **face_psnr(profile, test, folder / f"profile_{mode}", device, precision),
                                 "validation_psnr_db": refiner["validation"].get("face_psnr_refined_db")})
            stages, wall, n_frames = run_speak(profile, speech, folder / f"profile_{mode}", device, precision)
            rows_speak.append({"mode": mode, **stages, "frames": n_frames, "frames_per_s": round(n_frames / wall, 1),
                               "wall_over_audio": round(wall / SPEECH_SECONDS, 2)})
            if mode == "after":
                latency = stream_latency(profile.folder, speech)
    bf16 = use_bfloat16(device)
    markdown = (
        f"# Speed: finetune and speak, stage by stage\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPU cores, device {device} (bfloat16 convolutions available: {bf16}). "
        f"Command: `python benchmarks/speed.py --modes {args.modes}`.\n\n"
        "before: the refiner in float32 with its fixed 1200 steps (talkface before this work); after: the defaults "
        "(bfloat16 + channels-last convolutions where the CPU has AMX/AVX-512 BF16, early stopping on held-out PSNR). "
        "Compositing in a box around the face and the other changes apply to both rows, so `before` is not the old code.\n\n"
        "## finetune (standard preset), first 15 s of obama_weekly_20s.mp4 (450x450), seconds\n\n"
        + markdown_table(rows_finetune)
        + "\n\n## Quality: face PSNR of the refined render on the clip's unseen last 5 s (refine benchmark: 32.2 dB)\n\n"
        + markdown_table(rows_quality)
        + f"\n\n## speak, refined, {SPEECH_SECONDS} s of English (`{SPEECH.name}`), seconds inside each stage, summed over the two threads (frames are made in one while the other encodes)\n\n"
        + markdown_table(rows_speak)
        + "\n\n## Streaming: `speak --out -` (fragmented MP4 on stdout), seconds from the command's start\n\n"
        + (markdown_table([latency]) if latency else "not measured")
        + "\n"
    )
    save_results("speed", markdown, {"version": __version__, "finetune": rows_finetune, "quality": rows_quality, "speak": rows_speak, "stream": latency})


if __name__ == "__main__":
    main()
