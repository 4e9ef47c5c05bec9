"""Benchmark: does the head in the video move as the generated motion says?

Three people no model or setting of talkface was tuned on (corpus clips, 15-20 s: a German news reader
at 512x512, a Chinese vlogger at 900x900, a bald man at the Capitol at 458x458) are finetuned without a
refiner and speak unseen English (english_17s.m4a), coarse, seed 0, twice in one run:
- before: keyframe background matching (the clip played between matched keyframes, render/background.py's
  `background_indices`), no turn of the background's head;
- after: backgrounds chosen frame by frame to follow the drawn angles (`follow_indices`) and each one's
  whole head turned by what it lacks times the gain finetune measured for the person (render/turn_gain.py),
  up to FOLLOW_TURN_DEGREES (render/headwarp.py), the uncovered room read from the clip's room plate
  (render/room.py).
Face Mesh on the output, fitted in the person's model (as `track_in_profile` does), against the motion `speak`
drew: yaw and pitch spread (std) ratio and frame-by-frame r, roll ratio; the mouth opening's r; how far what Face
Mesh reads is from the drawn angles (median and max over frames, |pitch| + |yaw| + |roll|), how far the
background head's angles as turned are from the drawn face's, and how far Face Mesh on the backgrounds alone
(no face drawn) reads from them; background cuts per 10 s; the video's yaw spread
against the person's own clip; speak frames/s. Then the same people refined (a draft refiner each): frames/s of
the whole `speak` call before and after, alternately, and the Face Mesh measures on the refined videos.
Writes benchmarks/results/follow.md, follow.json, follow_frames.jpg (each person's frames of the largest and
smallest yaw, before and after) and follow_turns.jpg (each person's most-turned frame at 100 %).

Usage: python benchmarks/follow.py [--people german,chinese,bald] [--refined german,chinese,bald]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import talkface.output as output  # noqa: E402
from talkface import __version__  # noqa: E402
from talkface.config import FinetuneConfig, SpeakConfig  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import read_frames_at, write_video  # noqa: E402
from talkface.motion import load_motion  # noqa: E402
from talkface.render import background  # noqa: E402
from talkface.render.turn_gain import load_turn_gain  # noqa: E402
from talkface.signals import pearson  # noqa: E402
from talkface.speak import speak  # noqa: E402
from talkface.face import topology  # noqa: E402
from talkface.face.fit import fit_clip  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PEOPLE = {
    "german": DATA / "corpus" / "german_man_newsdesk_mimictalk_german20s.mp4",
    "chinese": DATA / "corpus" / "chinese_woman_vlog_joygen_example15s.mp4",
    "bald": DATA / "corpus" / "bald_man_capitol_infinitetalk_ref_video.mp4",
}
SPEECH = DATA / "audio" / "english_17s.m4a"
WORK = ROOT / "out" / "follow"


def keyframes_before():
    """The render as it was: keyframe matching, no turn of the background's head."""
    saved = output.follow_indices, output.follow_turn
    output.follow_indices = background.background_indices
    output.follow_turn = lambda residual, gain=None: np.zeros_like(residual)
    return saved


def read_angles(profile, video: Path, drawn) -> tuple:
    """Face Mesh on `video`, fitted in the person's model: (its track, the drawn angles, the angles read: (n, 3)
    degrees over the frames both have, the frames where a face was read, |pitch| + |yaw| + |roll| between them there)."""
    tracked = track_video(video)
    fit = fit_clip(profile.face, tracked)
    n = min(drawn.n_frames, len(fit.pose))
    a, b = np.degrees(drawn.pose[:n, :3].astype(np.float64)), np.degrees(fit.pose[:n, :3].astype(np.float64))
    ok = np.isfinite(b).all(1)
    return tracked, a, b, ok, np.abs(b[ok] - a[ok]).sum(1)


def measure(profile, video: Path, motion_path: Path) -> dict:
    drawn = load_motion(motion_path)
    tracked, a, b, ok, off = read_angles(profile, video, drawn)
    n = len(a)
    lips = pearson(topology.mouth_openness(tracked.landmarks[:n]), topology.mouth_openness(drawn.landmarks[:n]))
    ratio = lambda k: float(np.std(b[ok, k]) / max(np.std(a[ok, k]), 1e-9))  # noqa: E731
    clip_yaw = np.degrees(np.nanstd(profile.clip_fit.pose[:, 1]))
    return {
        "yaw spread video/motion": round(ratio(1), 2),
        "yaw r": round(pearson(a[ok, 1], b[ok, 1]), 3),
        "pitch spread video/motion": round(ratio(0), 2),
        "pitch r": round(pearson(a[ok, 0], b[ok, 0]), 3),
        "roll video/motion": round(ratio(2), 2),
        "video yaw spread / clip's": round(float(np.std(b[ok, 1]) / clip_yaw), 2),
        "face found": f"{ok.mean():.0%}",
        "mouth r video/motion": round(lips, 3),
        "video vs drawn deg (median / max)": f"{np.median(off):.1f} / {off.max():.1f}",
    }


def backgrounds(profile, motion_path: Path, follow: bool) -> dict:
    """What the chosen backgrounds' heads lack of the drawn angles after their turn, and cuts."""
    drawn = load_motion(motion_path)
    clip_pose = profile.clip_fit.pose.astype(np.float64)
    natural = drawn.pose.astype(np.float64)
    choose = background.follow_indices if follow else background.background_indices
    indices = choose(natural, clip_pose, profile.clip_fit.valid)
    residual = natural[:, :3] - clip_pose[indices, :3]
    if follow:  # what the head's turn leaves of it, or turns past it (it is asked the person's measured gain)
        residual = residual - background.follow_turn(residual, load_turn_gain(profile.folder).of(residual))
    lack = np.degrees(np.abs(residual)).sum(1)
    cuts = int((np.abs(np.diff(indices)) > 2).sum())
    return {
        "head vs face deg (median / max)": f"{np.median(lack):.1f} / {lack.max():.1f}",
        "cuts per 10 s": round(cuts / (len(indices) / 25) * 10, 2),
        "held frames": f"{np.mean(np.diff(indices) == 0):.0%}",
    }


def seen_heads(profile, motion_path: Path, out: Path) -> dict:
    """The background heads as a viewer sees them: the backgrounds `speak` drew this motion's face onto
    (the clip frames chosen, their heads turned), written without the face (`out`), Face Mesh on them fitted
    in the person's model, against the drawn face's angles (|pitch| + |yaw| + |roll|)."""
    drawn = load_motion(motion_path)
    _, scenes, warper = output.background_scenes(profile, drawn)
    with warper, contextlib.closing(scenes):
        write_video(out, (scene for scene, _, _ in scenes), drawn.fps, None, 12)
    off = read_angles(profile, out, drawn)[-1]
    return {"head seen vs face deg (median / p95 / max)": f"{np.median(off):.1f} / {np.percentile(off, 95):.1f} / {off.max():.1f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default=",".join(PEOPLE))
    parser.add_argument("--refined", default="german,chinese,bald", help="people whose refined speak is timed before and after (a draft refiner is trained)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows, tiles = [], []
    for name in args.people.split(","):
        folder = WORK / name
        profile = finetune(PEOPLE[name], folder / "profile", FinetuneConfig(refiner=False))
        shown = {}
        for label in ("before", "after"):
            saved = keyframes_before() if label == "before" else None
            try:
                out, motion_path = folder / f"speak_{label}.mp4", folder / f"motion_{label}.npz"
                begun = time.perf_counter()
                result = speak(SPEECH, out, profile, SpeakConfig(refine=False, seed=0), motion_path=motion_path)
                seconds = time.perf_counter() - begun
                heads = seen_heads(profile, motion_path, folder / f"backgrounds_{label}.mp4")
            finally:
                if saved:
                    output.follow_indices, output.follow_turn = saved
            row = {"person": name, "render": label, **measure(profile, out, motion_path), **backgrounds(profile, motion_path, label == "after"), **heads,
                   "speak frames/s": round(result.n_frames / seconds, 1)}
            rows.append(row)
            print(row, flush=True)
            yaw = load_motion(motion_path).pose[:, 1]
            shown[label] = {int(np.argmax(yaw)): out, int(np.argmin(yaw)): out}
        for label in ("before", "after"):
            for index, video in shown[label].items():
                frame = read_frames_at(video, [index])[index]
                tiles.append(cv2.resize(frame, (256, 256), interpolation=cv2.INTER_AREA))
    largest_turn_crops(args.people.split(","))
    speed_rows = refined_speed(args.refined.split(",") if args.refined else [])
    sheet = np.concatenate([np.concatenate(tiles[i : i + 4], 1) for i in range(0, len(tiles), 4)], 0)
    cv2.imwrite(str(RESULTS / "follow_frames.jpg"), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    seconds = time.perf_counter() - started
    markdown = f"""# The head in the video follows the motion

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {seconds:.0f} s in all. Command: `python benchmarks/follow.py`.
Each person: a profile from their corpus clip (no refiner), `speak` of english_17s.m4a coarse, seed 0, before
(keyframe matching) and after (backgrounds following the drawn angles, heads turned by at most
{background.FOLLOW_TURN_DEGREES:g} degrees, asked the gain finetune measured for the person: render/turn_gain.py) in one run.
Spread: std of Face Mesh's angles on the output (fitted in the person's model) over the std of the motion's; r frame
by frame. Video vs drawn: |pitch| + |yaw| + |roll| between what Face Mesh reads on the output and the drawn face's
angles (what a viewer sees of the head against the motion; Face Mesh on real footage differs from its own smoothed
track by about 0.5 degree an angle). Head vs face: the same between the background head's angles as turned
(the clip frame's plus the turn asked of the warp) and the drawn face's; the turn is asked past the face where the
person's turned frames read short of it. Head seen vs face: the same between what Face Mesh reads on the backgrounds
themselves (the chosen clip frames with their heads turned, written without the face) and the drawn face's angles:
the head a viewer sees around the face. Mouth r: the mouth opening Face Mesh reads on the output against the motion's,
frame by frame (the lips kept through the turns). A cut: the background moves more than 2 clip frames in one output frame. follow_frames.jpg: per person, rows before / after, the frames of largest and smallest yaw;
follow_turns.jpg: per person, the frame whose background head was turned the most, at 100 %.

{markdown_table(rows)}

Refined `speak` (draft refiner) of the same audio, frames/s of the whole call, before and after alternately, twice each,
and Face Mesh on the refined videos (as above):

{markdown_table(speed_rows) if speed_rows else "(not run)"}
"""
    save_results("follow", markdown, {"rows": rows, "refined_speed": speed_rows, "seconds": round(seconds)})


def largest_turn_crops(names: list[str]) -> None:
    """follow_turns.jpg: per person, the 'after' frame whose background head was turned the most, the
    head and its surroundings at 100 % (the frame's middle: half its width and three quarters of its height)."""
    crops = []
    for name in names:
        folder = WORK / name
        profile = finetune(PEOPLE[name], folder / "profile", FinetuneConfig(refiner=False))
        drawn = load_motion(folder / "motion_after.npz").pose.astype(np.float64)
        clip_pose = profile.clip_fit.pose.astype(np.float64)
        indices = background.follow_indices(drawn, clip_pose, profile.clip_fit.valid)
        lacking = drawn[:, :3] - clip_pose[indices, :3]
        turn = np.degrees(np.abs(background.follow_turn(lacking, load_turn_gain(profile.folder).of(lacking)))).sum(1)
        index = int(np.argmax(turn))
        frame = read_frames_at(folder / "speak_after.mp4", [index])[index]
        height, width = frame.shape[:2]
        crop = np.ascontiguousarray(frame[height // 8 : height * 7 // 8, width // 8 : width * 7 // 8])
        cv2.putText(crop, f"{name} {index}: {turn[index]:.1f} deg", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
        crops.append(crop)
    height = max(crop.shape[0] for crop in crops)
    sheet = np.concatenate([cv2.copyMakeBorder(crop, 0, height - crop.shape[0], 0, 0, cv2.BORDER_CONSTANT) for crop in crops], 1)
    cv2.imwrite(str(RESULTS / "follow_turns.jpg"), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])


def refined_speak(profile, label: str, out: Path) -> float:
    saved = keyframes_before() if label == "before" else None
    try:
        begun = time.perf_counter()
        result = speak(SPEECH, out, profile, SpeakConfig(seed=0), motion_path=out.with_suffix(".npz"))
        return result.n_frames / (time.perf_counter() - begun)
    finally:
        if saved:
            output.follow_indices, output.follow_turn = saved


def refined_speed(names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        profile = finetune(PEOPLE[name], WORK / name / "refined", FinetuneConfig(preset="draft"))
        speeds = {"before": [], "after": []}
        for label in ("before", "after", "after", "before"):
            speeds[label].append(refined_speak(profile, label, WORK / name / f"refined_{label}.mp4"))
        before, after = np.mean(speeds["before"]), np.mean(speeds["after"])
        seen = {label: measure(profile, WORK / name / f"refined_{label}.mp4", WORK / name / f"refined_{label}.npz") for label in ("before", "after")}
        rows.append({"person": name, "refined frames/s before": f"{before:.1f} ({', '.join(f'{v:.1f}' for v in speeds['before'])})",
                     "after": f"{after:.1f} ({', '.join(f'{v:.1f}' for v in speeds['after'])})", "after / before": round(after / before, 2),
                     **{f"refined {label} yaw spread / r": f"{seen[label]['yaw spread video/motion']} / {seen[label]['yaw r']}" for label in seen},
                     **{f"refined {label} pitch spread / r": f"{seen[label]['pitch spread video/motion']} / {seen[label]['pitch r']}" for label in seen},
                     "refined after roll video/motion": seen["after"]["roll video/motion"],
                     "refined mouth r before / after": f"{seen['before']['mouth r video/motion']} / {seen['after']['mouth r video/motion']}",
                     "refined after video vs drawn deg": seen["after"]["video vs drawn deg (median / max)"],
                     "refined after video yaw spread / clip's": seen["after"]["video yaw spread / clip's"]})
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
