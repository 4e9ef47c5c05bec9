"""Benchmark: coarse rendering with keyframe background matching.

1. Self-reenactment: the person finetuned on obama_weekly_20s.mp4 and driven by that clip's own
   tracked parameters; PSNR/SSIM against the real frames (face box and full frame).
2. Speed: `render` frames/s, and `speak` end to end (audio features, motion, rendering, encoding)
   on jfk_inaugural_11s.flac, output frames/s, on this machine.
3. A strip of frames of the JFK-driven video, saved for people to look at.
Writes benchmarks/results/render.md, render.json and render_jfk_frames.jpg.
"""

from __future__ import annotations

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
from talkface.evaluate import evaluate  # noqa: E402
from talkface.face.model import project_landmarks  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import load_audio, read_frames_at  # noqa: E402
from talkface.motion import Motion  # noqa: E402
from talkface.output import render_video  # noqa: E402
from talkface.speak import speak  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIP = DATA / "video" / "obama_weekly_20s.mp4"
SPEECH = DATA / "audio" / "jfk_inaugural_11s.flac"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        profile = finetune(CLIP, folder / "profile", FinetuneConfig(refiner=False))  # the coarse render; benchmarks/refine.py has the refiner
        fit = profile.clip_fit
        motion = Motion(fit.expression, fit.pose, project_landmarks(profile.face, fit), profile.fps)
        start = time.perf_counter()
        render_video(profile, motion, folder / "self.mp4", load_audio(CLIP))
        render_seconds = time.perf_counter() - start
        comparison = evaluate(folder / "self.mp4", CLIP).comparison
        start = time.perf_counter()
        spoken = speak(SPEECH, folder / "jfk.mp4", profile)
        speak_seconds = time.perf_counter() - start
        picks = np.linspace(10, spoken.n_frames - 10, 6).astype(int).tolist()
        frames = read_frames_at(folder / "jfk.mp4", picks)
        strip = np.concatenate([cv2.resize(frames[i], (300, 300), interpolation=cv2.INTER_AREA) for i in picks], axis=1)
        RESULTS.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(RESULTS / "render_jfk_frames.jpg"), strip[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    quality = {
        "psnr_full_db": round(comparison.psnr_full, 2),
        "ssim_full": round(comparison.ssim_full, 4),
        "psnr_face_db": round(comparison.psnr_face, 2),
        "ssim_face": round(comparison.ssim_face, 4),
        "m_lmd": round(comparison.m_lmd, 3),
        "mouth_opening_r": round(comparison.mouth_opening_r, 3),
        "identity_distance": round(comparison.identity_distance, 3),
    }
    speed = {
        "render_frames_per_s (self-reenactment, 450x450, 500 frames)": round(motion.n_frames / render_seconds, 1),
        "speak_frames_per_s (jfk 11 s, end to end)": round(spoken.n_frames / speak_seconds, 1),
    }
    markdown = (
        f"# Coarse rendering benchmark\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores. "
        "Command: `python benchmarks/render.py`.\n\n## Self-reenactment of `obama_weekly_20s.mp4` (its own tracked motion)\n\n"
        + markdown_table([quality]) + "\n\n## Speed\n\n" + markdown_table([speed])
        + "\n\nFrames of `speak` driven by `jfk_inaugural_11s.flac`: `render_jfk_frames.jpg`.\n"
    )
    save_results("render", markdown, {"version": __version__, "self_reenactment": quality, "speed": speed})


if __name__ == "__main__":
    main()
