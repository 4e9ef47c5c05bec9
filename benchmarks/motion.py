"""Benchmark: audio -> expression + head pose on a held-out part of a real clip.

congressman_d_60s.mp4 is cut in two: the person is finetuned on the first 20 s and driven by
the audio of the remaining 40 s, whose real motion (tracked and fitted in the person's model)
is the ground truth. Reports per feature set, with and without the generic lip model (the lip-sync details are in lipsync.py):
mouth-opening correlation (lag 0) and M-LMD against baselines, head-pose amplitude and
drift, blink rate, finetune time; then `speak` on every audio file in ../shared/data/audio.
Writes benchmarks/results/motion.md and motion.json.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from talkface import __version__  # noqa: E402
from talkface.audio import extract  # noqa: E402
from talkface.config import FinetuneConfig  # noqa: E402
from talkface.evaluate.metrics import blink_frames, eye_openness, landmark_distance, pearson  # noqa: E402
from talkface.face import topology  # noqa: E402
from talkface.face.fit import fit_clip  # noqa: E402
from talkface.face.model import FaceFit, project_landmarks  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, write_video  # noqa: E402
from talkface.motion.model import AUDIO_RADIUS, ALPHAS, generate_motion, shift_features  # noqa: E402
from talkface.motion.ridge import Ridge, chunked, choose_alpha, stack_context  # noqa: E402
from talkface.speak import speak  # noqa: E402

from report import markdown_table, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLIP = DATA / "video" / "congressman_d_60s.mp4"
TRAIN_SECONDS = 20
FPS = 25


def split_clip(folder: Path) -> tuple[Path, Path]:
    frames = read_frames(CLIP)
    audio = load_audio(CLIP)
    cut = TRAIN_SECONDS * FPS
    train = write_video(folder / "train.mp4", itertools.islice(frames, cut), FPS, Audio(audio.samples[: TRAIN_SECONDS * 16000], 16000))
    test = write_video(folder / "test.mp4", frames, FPS, Audio(audio.samples[TRAIN_SECONDS * 16000 :], 16000))
    return train, test


def scores(face, expression, truth_landmarks, pose):
    """Mouth r and M-LMD of an expression sequence placed at the real head pose."""
    predicted = project_landmarks(face, FaceFit(pose, expression.astype(np.float32)))
    opening = topology.mouth_openness(predicted)
    real = topology.mouth_openness(truth_landmarks)
    return {"mouth_r": round(pearson(opening, real), 3), "m_lmd": round(landmark_distance(predicted, truth_landmarks, topology.lip_indices()), 3)}


def main() -> None:
    rows, pose_rows, speak_rows = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train, test = split_clip(folder)
        test_track = track_video(test)
        test_audio = load_audio(test)
        n_test = test_track.n_frames
        real_opening_std = float(topology.mouth_openness(test_track.landmarks).std())
        variants = [("mfcc", False), ("whisper", False), ("mfcc+whisper", False), ("mfcc+whisper", True)]
        for feature_set, use_generic in variants:
            start = time.perf_counter()
            profile = finetune(train, folder / f"p_{feature_set}_{use_generic}", FinetuneConfig(features=feature_set, use_generic=use_generic, refiner=False))
            seconds = time.perf_counter() - start
            truth = fit_clip(profile.face, test_track)
            features = extract(test_audio, feature_set, n_test)
            motion = generate_motion(profile.motion, profile.face, features, FPS, seed=0)
            row = {"model": f"talkface ({feature_set}, {'generic + personal' if use_generic else 'personal only'})", "finetune_s": round(seconds, 1)}
            row.update(scores(profile.face, motion.expression, test_track.landmarks, truth.pose))
            rows.append(row)
            if use_generic:  # trained in sync: also scored against the recording re-synced by its own offset
                offset = profile.motion.offset_frames
                synced = profile.motion.predict_expression(shift_features(features, offset))
                rows.append({"model": f"talkface (generic + personal), test audio re-synced by the clip's offset ({offset:+.2f} frames, found by finetune)",
                             **scores(profile.face, synced, test_track.landmarks, truth.pose)})
            if use_generic:
                best, best_features = profile, features
                real_pose, generated_pose = np.degrees(truth.pose[:, :3]), np.degrees(motion.pose[:, :3])
                long_features = np.concatenate([features] * 15)  # 10 minutes
                long_pose = np.degrees(generate_motion(profile.motion, profile.face, long_features, FPS, seed=1).pose[:, :3])
                clip_mean, clip_std = np.degrees(profile.clip_fit.pose[:, :3].mean(0)), np.degrees(profile.clip_fit.pose[:, :3].std(0))
                for index, name in ((1, "yaw"), (0, "pitch")):
                    pose_rows.append({
                        "angle": name,
                        "real_std_deg": round(float(real_pose[:, index].std()), 2),
                        "generated_std_deg": round(float(generated_pose[:, index].std()), 2),
                        "ratio": round(float(generated_pose[:, index].std() / real_pose[:, index].std()), 2),
                        "10min_last_minute_mean_offset_in_clip_stds": round(float(abs(long_pose[-1500:, index].mean() - clip_mean[index]) / clip_std[index]), 2),
                        "10min_std_first_vs_last_minute_deg": f"{long_pose[:1500, index].std():.2f} / {long_pose[-1500:, index].std():.2f}",
                    })
                generated_blinks = len(blink_frames(eye_openness(motion.landmarks))) / (n_test / FPS / 60)
                real_blinks = len(blink_frames(eye_openness(test_track.raw_landmarks))) / (n_test / FPS / 60)
                blink_row = {"clip_rate_per_min": round(profile.motion.blinks.per_minute, 1), "test_part_real_per_min": round(real_blinks, 1), "generated_per_min": round(generated_blinks, 1)}
        rows += baselines(best, train, test_track, test_audio, best_features)
        for audio in sorted((DATA / "audio").iterdir()):
            start = time.perf_counter()
            try:
                result = speak(audio, folder / f"{audio.stem}.mp4", best)
                opening = topology.mouth_openness(result.motion.landmarks)
                speak_rows.append({
                    "audio": audio.name,
                    "frames": result.n_frames,
                    "seconds": round(time.perf_counter() - start, 1),
                    "frames_per_s": round(result.frames_per_second, 1),
                    "mouth_opening_std": round(float(opening.std()), 3),
                    "ok": True,
                })
            except Exception as exc:  # the benchmark reports every failure instead of stopping
                speak_rows.append({"audio": audio.name, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    write_results(rows, pose_rows, blink_row, speak_rows, real_opening_std)


def baselines(profile, train: Path, test_track, test_audio, features) -> list[dict]:
    """Static mouth, the training clip replayed, and ridge on stacked MFCC + Whisper (+-0.2 s)."""
    face = profile.face
    truth = fit_clip(face, test_track)
    n_test = test_track.n_frames
    train_expression = profile.clip_fit.expression[profile.clip_fit.valid]
    static = np.repeat(train_expression.mean(0, keepdims=True), n_test, 0)
    replay = np.tile(train_expression, (int(np.ceil(n_test / len(train_expression))), 1))[:n_test]
    train_features = extract(load_audio(train), "mfcc+whisper", len(profile.clip_fit.expression))
    x, y = stack_context(train_features, AUDIO_RADIUS)[profile.clip_fit.valid], train_expression
    ridge = Ridge.fit(x, y, choose_alpha(x, y, ALPHAS))
    ridge_prediction = chunked(lambda w: ridge.predict(stack_context(w, AUDIO_RADIUS)), features, AUDIO_RADIUS)
    return [
        {"model": "baseline: static mouth (mean expression)", **scores(face, static, test_track.landmarks, truth.pose)},
        {"model": "baseline: training clip replayed in order", **scores(face, replay, test_track.landmarks, truth.pose)},
        {"model": "baseline: ridge on MFCC + Whisper, +-0.2 s", **scores(face, ridge_prediction, test_track.landmarks, truth.pose)},
    ]


def write_results(rows, pose_rows, blink_row, speak_rows, real_opening_std: float) -> None:
    text = (
        f"# Audio -> motion benchmark\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores. "
        "Command: `python benchmarks/motion.py`.\n\n"
        f"Finetuned on the first {TRAIN_SECONDS} s of `{CLIP.name}`, driven by the audio of the remaining 40 s (1000 frames). "
        "Ground truth: the held-out part tracked and fitted in the person's model. Mouth r: Pearson correlation at lag 0 "
        "of mouth opening (inner-lip gap / mouth width). M-LMD: mean lip-landmark distance (px at a 256-px-wide face) with "
        "the predicted expression placed at the real head pose, against the tracked landmarks. The generic + personal model "
        "is trained in sync (finetune corrects the clip's own audio/video offset), so against this recording, which is off "
        "by that offset, it is also scored with the audio re-synced; see lipsync.md for the full comparison.\n\n"
        "## Mouth\n\n" + markdown_table(rows) + "\n\n## Head pose (talkface, generic + personal)\n\n" + markdown_table(pose_rows)
        + "\n\n## Blinks\n\n" + markdown_table([blink_row]) + "\n\n## speak on every audio file in ../shared/data/audio\n\n"
        + f"mouth_opening_std shows the lips move in every language (the real held-out part's: {real_opening_std:.3f}).\n\n"
        + markdown_table(speak_rows) + "\n"
    )
    save_results("motion", text, {"version": __version__, "mouth": rows, "pose": pose_rows, "blinks": blink_row, "speak": speak_rows})


if __name__ == "__main__":
    main()
