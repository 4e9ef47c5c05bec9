"""Benchmark: the memory-augmented GAN refiner against the coarse render.

obama_weekly_20s.mp4 is cut in two: the person is finetuned (refiner included, preset given on
the command line, default 'standard') on the first 15 s; the last 5 s are the test.
1. Driven by the test part's real tracked parameters (track --person): coarse and refined video
   against the real frames: face PSNR/SSIM, M-LMD, identity distance, mouth sharpness.
2. Driven by the test part's audio (speak): identity, mouth sharpness, mouth-opening r.
3. Times: the whole finetune, the refiner's training, render+refine frames/s, speak frames/s.
Frames of each video are saved side by side for people to look at.
Writes benchmarks/results/refine.md, refine.json, refine_frames.jpg and refine_mouths.jpg.

Usage: python benchmarks/refine.py [--preset standard] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from talkface import __version__  # noqa: E402
from talkface.config import FinetuneConfig  # noqa: E402
from talkface.device import resolve_device  # noqa: E402
from talkface.evaluate import evaluate  # noqa: E402
from talkface.evaluate.metrics import mouth_crop  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, read_frames_at, write_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.output import render_video  # noqa: E402
from talkface.speak import speak  # noqa: E402
from talkface.track import track_in_profile  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIP = DATA / "video" / "obama_weekly_20s.mp4"
TRAIN_SECONDS = 15


def split_clip(folder: Path) -> tuple[Path, Path]:
    """The clip's first TRAIN_SECONDS and the rest, as two videos with their sound."""
    frames = list(read_frames(CLIP))
    audio = load_audio(CLIP)
    cut = TRAIN_SECONDS * 25
    samples = TRAIN_SECONDS * audio.sample_rate
    train = write_video(folder / "train.mp4", frames[:cut], 25, Audio(audio.samples[:samples], audio.sample_rate))
    test = write_video(folder / "test.mp4", frames[cut:], 25, Audio(audio.samples[samples:], audio.sample_rate))
    return train, test


def scores(video: Path, reference: Path) -> dict:
    result = evaluate(video, reference)
    comparison = result.comparison
    return {
        "psnr_face_db": round(comparison.psnr_face, 2),
        "ssim_face": round(comparison.ssim_face, 4),
        "m_lmd": round(comparison.m_lmd, 3),
        "mouth_opening_r": round(comparison.mouth_opening_r, 3),
        "identity_distance": round(comparison.identity_distance, 3),
        "mouth_sharpness": round(result.generated.mouth_sharpness, 1),
        "real_mouth_sharpness": round(result.reference.mouth_sharpness, 1),
    }


def contact(videos: dict[str, Path], picks: list[int], path: Path, mouths: bool) -> None:
    """Rows: picked frames; columns: the videos (whole frames, or mouth close-ups)."""
    from talkface.face.tracker import track_video

    rows = []
    for name, video in videos.items():
        frames = read_frames_at(video, picks)
        if mouths:
            landmarks = track_video(video).landmarks
            tiles = [cv2.resize(mouth_crop(frames[i], landmarks[i]), (160, 160), interpolation=cv2.INTER_CUBIC) for i in picks]
        else:
            tiles = [cv2.resize(frames[i], (300, 300), interpolation=cv2.INTER_AREA) for i in picks]
        column = np.concatenate(tiles, 0)
        cv2.putText(column, name, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        rows.append(column)
    cv2.imwrite(str(path), np.concatenate(rows, 1)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train, test = split_clip(folder)
        started = time.perf_counter()
        profile = finetune(train, folder / "profile", FinetuneConfig(preset=args.preset), device=device)
        finetune_seconds = time.perf_counter() - started
        motion = track_in_profile(test, profile.folder)
        test_audio = load_audio(test)
        videos = {"real": test}
        timings = {}
        for name, refine, onto in (
            ("coarse", False, test),
            ("refined", True, test),
            ("coarse_matched_bg", False, None),
            ("refined_matched_bg", True, None),
        ):
            started = time.perf_counter()
            videos[name] = render_video(profile, motion, folder / f"{name}.mp4", test_audio, device, refine, onto=onto)
            timings[name] = motion.n_frames / (time.perf_counter() - started)
        spoken = {}
        for name, refine in (("speak_coarse", False), ("speak_refined", True)):
            from talkface.config import SpeakConfig

            spoken[name] = speak(test, folder / f"{name}.mp4", profile, SpeakConfig(refine=refine), device)
            videos[name] = spoken[name].video
        quality = [{"video": name, **scores(videos[name], test)} for name in videos if name != "real"]
        picks = np.linspace(8, motion.n_frames - 8, 5).astype(int).tolist()
        RESULTS.mkdir(parents=True, exist_ok=True)
        contact(videos, picks, RESULTS / "refine_frames.jpg", mouths=False)
        contact(videos, picks, RESULTS / "refine_mouths.jpg", mouths=True)
    refiner = profile.info.refiner
    speed = {
        "device": device,
        "preset": args.preset,
        "finetune_total_s (15 s clip)": round(finetune_seconds, 1),
        "refiner_training_s": refiner["train_seconds_this_run"],
        "refiner_steps": refiner["steps"],
        "render_coarse_frames_per_s": round(timings["coarse_matched_bg"], 1),
        "render_refined_frames_per_s": round(timings["refined_matched_bg"], 1),
        "speak_coarse_frames_per_s": round(spoken["speak_coarse"].frames_per_second, 1),
        "speak_refined_frames_per_s": round(spoken["speak_refined"].frames_per_second, 1),
    }
    markdown = (
        f"# GAN refiner benchmark\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores. "
        f"Command: `python benchmarks/refine.py --preset {args.preset}`.\n\n"
        f"Finetuned on the first {TRAIN_SECONDS} s of `obama_weekly_20s.mp4`; tested on its last 5 s "
        "(`coarse`/`refined`: driven by the real tracked parameters of those 5 s and drawn in place on their frames, "
        "`render --onto`; `*_matched_bg`: the same motion on backgrounds chosen from the training part to follow it "
        "(their heads turned where they lack the motion's angles: render/background.py), so the head sits on another frame's neck and PSNR/LMD also measure that shift; `speak_*`: driven by "
        "their audio, so head motion is generated and PSNR/SSIM/LMD do not apply). Real mouth sharpness is the test part's."
        " The `speak_*` rows' mouth_opening_r is at lag 0 against the real video, whose picture is off its own sound"
        f" (finetune finds the clip's offset, {profile.motion.offset_frames:+.2f} frames, and speaks in sync with the sound),"
        " so it reads low: `benchmarks/results/lipsync.md` measures lip sync against the offset-corrected real mouth.\n\n"
        + markdown_table(quality)
        + "\n\n## Refiner validation during finetune (held-out end of the training clip, crop space)\n\n"
        + markdown_table([refiner["validation"]])
        + "\n\n## Time\n\n"
        + markdown_table([speed])
        + "\n\nFrames: `refine_frames.jpg` (columns: real, coarse, refined, coarse and refined on matched backgrounds, speak coarse, speak refined), "
        "mouth close-ups: `refine_mouths.jpg`.\n"
    )
    save_results("refine", markdown, {"version": __version__, "quality": quality, "validation": refiner["validation"], "speed": speed})


if __name__ == "__main__":
    main()
