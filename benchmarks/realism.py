"""Benchmark: whole-face realism (issue 15): sharpness, blinks, brows, flicker, seams.

Two people (a third on request), each finetuned (preset 'standard') on the start of their clip and tested on what
follows:
- obama_weekly_20s.mp4: train the first 15 s, test the last 5 s (the refine benchmark's split);
- congressman_d_60s.mp4: train the first 20 s, test the next 10 s;
- corpus/jim_acosta_cnn_dfrf_cnn2.mp4 (512x512, a news read): the same split, as an independent
  check on a person no setting was tuned on (`--clips acosta`; the default runs the first two).
For each, two videos are made of the test part:
- `onto`: the test part's own tracked motion drawn on its own frames (render --onto), so it can
  be compared with the real frames pixel by pixel (face PSNR, sharpness, flicker, brows);
- `speak`: the test part's audio spoken with `--blink-rate 30` (blink recall, brow spread);
  and, for more blinks to count, 45 s of other speech (`english_45s.mp3`) spoken the same way.
Measured with the face tracker on the output videos:
- sharpness: Laplacian variance in the face box, and the power of the face box's spectrum in a
  detail band (0.06-0.2 cycles/px) and a noise band (0.3-0.5 cycles/px), output / real frames
  (the test part's; for `speak`, also all the person's real frames, training and test parts);
- blink recall: blinks in the motion found by a lid-gap detector in the output (+-3 frames);
- brow spread: std of brow height (over eye distance), output / the person's training clip;
  over 5 s one seed's head motion is a small sample (its brows' spread in the motion ranged
  0.81-1.29 of the clip's over seeds 0-2 on Obama), so `brow_spread_speak_seeds` is the mean
  over SEEDS (5) seeds; `brow_spread_motion_45s` is the 45-s motion's own (its landmarks, before
  rendering), which tells what the motion asks for from what the video shows;
- flicker: frame-to-frame change of still skin (forehead, cheeks, nose) after aligning
  consecutive faces, output / real; `flicker_onto` aligns `onto` by its own tracked landmarks,
  `flicker_onto_real_aligned` by the real frames' (`onto` draws the face exactly where they
  have it): the eye corners the alignment uses are pasted from other clip frames in `onto`, and
  their tracking jitter read as flicker (1.12 on Obama's skin that was the real frame's pixels);
- face PSNR of `onto` against the real frames (the refine benchmark's 32.2 dB row);
- mouth r onto: the tracked mouth opening of `onto` against the real frames' (the same motion), so
  the rendered lips' fidelity, whatever the mouth is drawn from.
Crops of eyes, brows, jaw line and skin at 100 %, open and mid-blink, go to a picture.

Results are kept per label (`--label before|after`), so one file holds both columns.
Writes benchmarks/results/realism.md, realism.json and realism_crops_LABEL.jpg.

Usage: python benchmarks/realism.py --label after [--clips obama,congressman] [--work out/realism]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from talkface import __version__  # noqa: E402
from talkface.config import FinetuneConfig, SpeakConfig  # noqa: E402
from talkface.evaluate import evaluate  # noqa: E402
from talkface.face.topology import eye_openness, mouth_openness  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, write_video  # noqa: E402
from talkface.output import render_video  # noqa: E402
from talkface.signals import blink_frames, pearson  # noqa: E402
from talkface.speak import speak  # noqa: E402
from talkface.track import track_in_profile  # noqa: E402

from report import RESULTS, markdown_table  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
CLIPS = {  # name: (video, training seconds, test seconds)
    "obama": (DATA / "obama_weekly_20s.mp4", 15, 5),
    "congressman": (DATA / "congressman_d_60s.mp4", 20, 10),
    # a third person, never used while tuning (an independent check; run with --clips acosta)
    "acosta": (DATA.parent / "corpus" / "jim_acosta_cnn_dfrf_cnn2.mp4", 20, 10),
}
DEFAULT_CLIPS = "obama,congressman"
BLINK_RATE = 30.0
LONG_AUDIO = DATA.parent / "audio" / "english_45s.mp3"
SEEDS = 5  # head-motion seeds the 5-s brow spread is averaged over
BLINK_SLACK = 3  # frames: a detected blink this close to a motion blink counts as found
RIGHT_BROW, LEFT_BROW = (70, 63, 105, 66, 107), (300, 293, 334, 296, 336)
EYE_CORNERS = ((33, 133), (362, 263))
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
STABLE = (33, 133, 362, 263, 1, 4, 6, 168, 10, 151, 234, 454, 152)  # points that move with the head, not the expression
LIPS_HULL = (61, 291, 0, 17, 13, 14, 40, 270, 91, 321)
EYE_HULLS = ((33, 133, 159, 145, 70, 105, 107), (362, 263, 386, 374, 300, 334, 336))
DETAIL_BAND, NOISE_BAND = (0.06, 0.2), (0.3, 0.5)


# -- measurements ------------------------------------------------------------------------------
def eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: the eyes' midpoint, the upward unit vector and the eye distance."""
    right = landmarks[:, list(EYE_CORNERS[0]), :2].mean(1)
    left = landmarks[:, list(EYE_CORNERS[1]), :2].mean(1)
    line = left - right
    distance = np.linalg.norm(line, axis=1)
    up = np.stack([line[:, 1], -line[:, 0]], 1) / distance[:, None]
    return (left + right) / 2, up, distance


def brow_height(landmarks: np.ndarray) -> np.ndarray:
    """(T,) brows above the eyes, perpendicular to the eye line, over the eye distance."""
    centre, up, distance = eye_frame(landmarks)
    brows = landmarks[:, list(RIGHT_BROW + LEFT_BROW), :2].mean(1)
    return ((brows - centre) * up).sum(1) / distance


def face_box(points: np.ndarray, width: int, height: int) -> tuple[slice, slice]:
    """Brows to chin, the middle 70 % of the face's width: skin, not background."""
    x0, x1 = points[:, 0].min(), points[:, 0].max()
    y0, y1 = points[list(RIGHT_BROW + LEFT_BROW), 1].min(), points[152, 1]
    margin = 0.15 * (x1 - x0)
    xs = slice(int(max(x0 + margin, 0)), int(min(x1 - margin, width)))
    return slice(int(max(y0, 0)), int(min(y1, height))), xs


def band_power(grey: np.ndarray) -> tuple[float, float]:
    """Mean spectral power of a Hann-windowed patch in the detail band and in the noise band."""
    patch = grey.astype(np.float64) - grey.mean()
    window = np.outer(np.hanning(patch.shape[0]), np.hanning(patch.shape[1]))
    power = np.abs(np.fft.fft2(patch * window)) ** 2 / window.sum()
    fy = np.fft.fftfreq(patch.shape[0])[:, None]
    fx = np.fft.fftfreq(patch.shape[1])[None]
    radius = np.hypot(fy, fx)
    return tuple(float(power[(radius >= lo) & (radius < hi)].mean()) for lo, hi in (DETAIL_BAND, NOISE_BAND))


def sharpness(frames: list[np.ndarray], landmarks: np.ndarray) -> dict:
    """Laplacian variance and band powers in the face box, averaged over frames with a face."""
    laplace, detail, noise = [], [], []
    for frame, points in zip(frames, landmarks):
        if np.isnan(points).any():
            continue
        ys, xs = face_box(points, frame.shape[1], frame.shape[0])
        grey = cv2.cvtColor(frame[ys, xs], cv2.COLOR_RGB2GRAY)
        if min(grey.shape) < 16:
            continue
        laplace.append(cv2.Laplacian(grey, cv2.CV_64F).var())
        d, n = band_power(grey)
        detail.append(d)
        noise.append(n)
    return {"laplacian": float(np.mean(laplace)), "detail": float(np.mean(detail)), "noise": float(np.mean(noise))}


def still_skin_mask(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Face oval without mouth, eyes and brows (each grown), as a uint8 mask."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[list(FACE_OVAL), :2]).astype(np.int32)), 1)
    mask = cv2.erode(mask, np.ones((9, 9), np.uint8))
    holes = np.zeros_like(mask)
    for indices in (LIPS_HULL, *EYE_HULLS):
        cv2.fillConvexPoly(holes, cv2.convexHull(np.round(points[list(indices), :2]).astype(np.int32)), 1)
    grow = max(3, int(0.08 * np.ptp(points[:, 0])))
    holes = cv2.dilate(holes, np.ones((2 * grow + 1,) * 2, np.uint8))
    return mask & (1 - holes)


def flicker(frames: list[np.ndarray], landmarks: np.ndarray) -> float:
    """Mean absolute grey change of still skin between consecutive frames, head motion removed."""
    changes = []
    for index in range(1, len(frames)):
        before, after = landmarks[index - 1], landmarks[index]
        if np.isnan(before).any() or np.isnan(after).any():
            continue
        matrix, _ = cv2.estimateAffinePartial2D(before[list(STABLE), :2].astype(np.float32), after[list(STABLE), :2].astype(np.float32))
        if matrix is None:
            continue
        height, width = frames[index].shape[:2]
        previous = cv2.warpAffine(cv2.cvtColor(frames[index - 1], cv2.COLOR_RGB2GRAY), matrix, (width, height), flags=cv2.INTER_LINEAR)
        current = cv2.cvtColor(frames[index], cv2.COLOR_RGB2GRAY)
        mask = still_skin_mask(after, width, height).astype(bool)
        if mask.sum() > 100:
            changes.append(float(np.abs(current[mask].astype(np.float32) - previous[mask]).mean()))
    return float(np.mean(changes))


def blink_recall(motion_landmarks: np.ndarray, video_landmarks: np.ndarray) -> tuple[int, int]:
    """(motion blinks found in the video, motion blinks)."""
    wanted = blink_frames(eye_openness(motion_landmarks))
    seen = blink_frames(eye_openness(video_landmarks))
    found = sum(any(b0 <= last + BLINK_SLACK and b1 >= first - BLINK_SLACK for b0, b1 in seen) for first, last in wanted)
    return found, len(wanted)


# -- pictures --------------------------------------------------------------------------------
def crops(frame: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
    """100 % crops: both eyes with brows, the jaw line, a cheek, the mouth (fixed sides per face size)."""
    centre, up, distance = eye_frame(points[None])
    d = float(distance[0])
    boxes = [
        (centre[0] + up[0] * 0.25 * d, 2.0 * d, 0.9 * d),  # eyes and brows
        (points[152, :2] + up[0] * 0.2 * d, 1.6 * d, 0.7 * d),  # chin and jaw line
        (points[(61, 291), :2].mean(0), 1.0 * d, 0.6 * d),  # mouth
        (points[205, :2], 0.5 * d, 0.5 * d),  # cheek skin
    ]
    out = []
    for (x, y), w, h in boxes:
        x0, y0 = int(max(x - w / 2, 0)), int(max(y - h / 2, 0))
        out.append(frame[y0 : y0 + int(h), x0 : x0 + int(w)])
    return out


def crop_sheet(rows: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """One row per (label: frame, landmarks); columns: eyes+brows, jaw, mouth, cheek at 100 %."""
    tiles = {name: crops(frame, points) for name, (frame, points) in rows.items()}
    widths = [max(t[i].shape[1] for t in tiles.values()) for i in range(4)]
    lines = []
    for name, row in tiles.items():
        height = max(t.shape[0] for t in row) + 18
        line = np.zeros((height, sum(widths) + 8 * 4, 3), np.uint8)
        x = 0
        for tile, width in zip(row, widths):
            line[18 : 18 + tile.shape[0], x : x + tile.shape[1]] = tile
            x += width + 8
        cv2.putText(line, name, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        lines.append(line)
    width = max(line.shape[1] for line in lines)
    sheet = np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines])
    cv2.imwrite(str(path), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])


# -- one clip ----------------------------------------------------------------------------------
def split(video: Path, train_seconds: int, test_seconds: int, folder: Path) -> tuple[Path, Path]:
    if (folder / "test.mp4").exists():
        return folder / "train.mp4", folder / "test.mp4"
    frames = list(read_frames(video))
    audio = load_audio(video)
    cut, end = train_seconds * 25, (train_seconds + test_seconds) * 25
    rate = audio.sample_rate
    train = write_video(folder / "train.mp4", frames[:cut], 25, Audio(audio.samples[: train_seconds * rate], rate))
    test = write_video(folder / "test.mp4", frames[cut:end], 25, Audio(audio.samples[train_seconds * rate : (train_seconds + test_seconds) * rate], rate))
    return train, test


def measure_clip(name: str, folder: Path, label: str) -> tuple[dict, dict]:
    video, train_seconds, test_seconds = CLIPS[name]
    folder.mkdir(parents=True, exist_ok=True)
    train, test = split(video, train_seconds, test_seconds, folder)
    profile = finetune(train, folder / "profile", FinetuneConfig(preset="standard"))  # cached: a rerun only measures
    onto = render_video(profile, track_in_profile(test, profile.folder), folder / "onto.mp4", load_audio(test), "cpu", True, onto=test)
    spoken = speak(test, folder / "speak.mp4", profile, SpeakConfig(blink_rate=BLINK_RATE), "cpu")
    long = speak(LONG_AUDIO, folder / "speak_45s.mp4", profile, SpeakConfig(blink_rate=BLINK_RATE), "cpu")
    tracks = {key: track_video(path) for key, path in (("train", train), ("real", test), ("onto", onto), ("speak", spoken.video), ("long", long.video))}
    frames = {key: list(read_frames(path)) for key, path in (("real", test), ("onto", onto), ("speak", spoken.video))}
    sharp = {key: sharpness(frames[key], tracks[key].raw_landmarks) for key in frames}
    found, wanted = np.add(blink_recall(spoken.motion.landmarks, tracks["speak"].raw_landmarks), blink_recall(long.motion.landmarks, tracks["long"].raw_landmarks))
    brows = {key: float(np.nanstd(brow_height(track.raw_landmarks))) for key, track in tracks.items()}
    brows["seeds"] = [brows["speak"]] + [
        float(np.nanstd(brow_height(track_video(speak(test, folder / f"speak_seed{seed}.mp4", profile, SpeakConfig(blink_rate=BLINK_RATE, seed=seed), "cpu").video).raw_landmarks)))
        for seed in range(1, SEEDS)
    ]
    brows["motion_long"] = float(np.std(brow_height(long.motion.landmarks)))
    sharp["long"] = sharpness(list(read_frames(long.video)), tracks["long"].raw_landmarks)
    # `speak` says other words than the test part: its face is also compared with all the person's
    # real frames (training and test parts together), not only with the test part's few seconds
    whole = list(read_frames(train)) + frames["real"]
    sharp["clip"] = sharpness(whole, np.concatenate([tracks["train"].raw_landmarks[: len(whole) - len(frames["real"])], tracks["real"].raw_landmarks]))
    flick = {key: flicker(frames[key], tracks[key].raw_landmarks) for key in ("real", "onto")}
    flick["onto_real_aligned"] = flicker(frames["onto"], tracks["real"].raw_landmarks)
    psnr = evaluate(onto, test).comparison.psnr_face
    ratio = lambda a, b: round(a / b, 3)  # noqa: E731
    row = {
        "clip": name,
        "label": label,
        "face_psnr_onto_db": round(psnr, 2),
        "sharpness_onto": ratio(sharp["onto"]["laplacian"], sharp["real"]["laplacian"]),
        "sharpness_speak": ratio(sharp["speak"]["laplacian"], sharp["real"]["laplacian"]),
        "sharpness_speak_45s": ratio(sharp["long"]["laplacian"], sharp["real"]["laplacian"]),
        "sharpness_speak_vs_clip": ratio(sharp["speak"]["laplacian"], sharp["clip"]["laplacian"]),
        "sharpness_speak_45s_vs_clip": ratio(sharp["long"]["laplacian"], sharp["clip"]["laplacian"]),
        "detail_band_onto": ratio(sharp["onto"]["detail"], sharp["real"]["detail"]),
        "detail_band_speak": ratio(sharp["speak"]["detail"], sharp["real"]["detail"]),
        "noise_band_onto": ratio(sharp["onto"]["noise"], sharp["real"]["noise"]),
        "noise_band_speak": ratio(sharp["speak"]["noise"], sharp["real"]["noise"]),
        "blink_recall": f"{found}/{wanted}" + (f" = {found / wanted:.2f}" if wanted else ""),
        "brow_spread_speak": ratio(brows["speak"], brows["train"]),
        "brow_spread_speak_45s": ratio(brows["long"], brows["train"]),
        "brow_spread_onto": ratio(brows["onto"], brows["real"]),
        "brow_spread_speak_seeds": ratio(float(np.mean(brows["seeds"])), brows["train"]),
        "brow_spread_motion_45s": ratio(brows["motion_long"], brows["train"]),
        "flicker_onto": ratio(flick["onto"], flick["real"]),
        "flicker_onto_real_aligned": ratio(flick["onto_real_aligned"], flick["real"]),
        "mouth_r_onto": round(float(pearson(mouth_openness(tracks["onto"].raw_landmarks), mouth_openness(tracks["real"].raw_landmarks))), 3),
        "refiner_training_s": profile.info.refiner["train_seconds_this_run"],  # from the run that trained it
        "refiner_steps": profile.info.refiner["steps"],
    }
    raw = {"sharpness": sharp, "brow_std": brows, "flicker": flick, "blinks": [int(found), int(wanted)], "refiner": profile.info.refiner.get("validation")}
    # the picture: real, onto at an open frame; speak at an open frame and at its deepest blink
    openness = eye_openness(spoken.motion.landmarks)
    blink = int(np.argmin(openness))
    awake = int(np.argmax(np.where(np.isnan(tracks["speak"].raw_landmarks).any((1, 2)), -1, openness)))
    rows = {
        f"{name} real": (frames["real"][awake % len(frames["real"])], tracks["real"].raw_landmarks[awake % len(frames["real"])]),
        f"{name} {label} onto": (frames["onto"][awake % len(frames["onto"])], tracks["onto"].raw_landmarks[awake % len(frames["onto"])]),
        f"{name} {label} speak open": (frames["speak"][awake], tracks["speak"].raw_landmarks[awake]),
        f"{name} {label} speak mid-blink": (frames["speak"][blink], spoken.motion.landmarks[blink]),
    }
    return row, {"raw": raw, "picture": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", required=True, help="column name for this code, e.g. before or after")
    parser.add_argument("--clips", default=DEFAULT_CLIPS, help=f"any of {', '.join(CLIPS)}")
    parser.add_argument("--work", default="out/realism", help="kept between runs: splits and profiles (delete to finetune again)")
    args = parser.parse_args()
    store = RESULTS / "realism.json"
    results = json.loads(store.read_text()) if store.exists() else {"rows": [], "raw": {}}
    pictures = {}
    for name in args.clips.split(","):
        row, extra = measure_clip(name, Path(args.work) / args.label / name, args.label)
        results["rows"] = [r for r in results["rows"] if (r["clip"], r["label"]) != (name, args.label)] + [row]
        results["raw"][f"{name}/{args.label}"] = extra["raw"]
        pictures.update(extra["picture"])
        print(markdown_table([row]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.clips == DEFAULT_CLIPS else "_" + args.clips.replace(",", "_")  # never over the default run's sheet
    crop_sheet(pictures, RESULTS / f"realism_crops_{args.label}{suffix}.jpg")
    print(write_results(results, store))


def write_results(results: dict, store: Path) -> str:
    """realism.json and realism.md from all labels' rows; returns the markdown."""
    results["rows"].sort(key=lambda r: (r["clip"], r["label"] != "before"))
    results["version"] = __version__
    store.write_text(json.dumps(results, indent=2) + "\n")
    markdown = (
        f"# Whole-face realism benchmark\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores. "
        "Command: `python benchmarks/realism.py --label LABEL` (see the script's docstring for what each column measures).\n\n"
        "Ratios are output / real: sharpness and flicker against the real test frames (`_vs_clip`: against all the person's "
        "real frames, training and test parts, since `speak` says other words than the test part); `brow_spread_speak` against the "
        f"person's training clip (`_seeds`: the mean over {SEEDS} head-motion seeds of 5 s each; `brow_spread_motion_45s`: "
        "the 45-s motion's own landmarks, before rendering), `brow_spread_onto` against the real test frames (same motion). Targets (issue 15): "
        "sharpness 0.9-1.1, blink recall >= 0.8 with `--blink-rate 30`, brow spread 0.8-1.25, face PSNR not below 32.2 dB "
        "on obama.\n\n" + markdown_table(results["rows"]) + "\n\nCrops at 100 %: "
        + ", ".join(f"`{path.name}`" for path in sorted(RESULTS.glob("realism_crops_*.jpg")))
        + ".\n"
    )
    (RESULTS / "realism.md").write_text(markdown)
    return markdown


if __name__ == "__main__":
    main()
