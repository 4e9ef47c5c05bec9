"""Benchmark: free view. Does the visible head turn by the angle asked for?

A clip profile (obama_weekly_20s.mp4, preset draft, kept in --work between runs) speaks
obama_5s.wav with the head held still (`--pose still`) and `--yaw` (or `--pitch`) from -20 to
+20 degrees, three times: `before` as talkface did before whole-head warping (speak's renderer
is not told the view asked for), `session 8` with the head warped as session 8's ellipsoid alone,
and `after` with the ellipsoid fitted to the face mesh and the warp following the mesh on and
near the face. As a yardstick for
the measurement itself, the face mesh alone is drawn at each angle on grey and measured the
same way (`mesh alone`): what the measure reads for a face turned by exactly the angle. The output's
head angle is measured by fitting the person's own face model to Face Mesh landmarks tracked
on the written video (`track --person`), so the face's outline, which comes from the
background frame, counts as much as the drawn face; the measured turn is the mean angle
against the same mode's unturned output.
Clip frames turned to the yaw of real frames of the same person (Obama, and two people held out
from tuning: congressman_d_60s.mp4 and the corpus's young man in a white T-shirt) measure the
output against real turns.
Writes benchmarks/results/freeview.md, freeview.json and freeview_frames.jpg.

Usage: python benchmarks/freeview.py [--work out/freeview]
"""

from __future__ import annotations

import argparse
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
from talkface.controls import Controls  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import read_frames_at  # noqa: E402
from talkface.profile import load_profile  # noqa: E402
import talkface.speak as speak_module  # noqa: E402
from talkface.speak import speak  # noqa: E402
from talkface.track import track_in_profile  # noqa: E402
import talkface.output as output_module  # noqa: E402
import talkface.render.headwarp as headwarp  # noqa: E402
from talkface.face.model import place_vertices  # noqa: E402
from talkface.media import write_video  # noqa: E402
from talkface.render.composite import FaceCompositor  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PERSON = DATA / "video" / "obama_weekly_20s.mp4"
SPEECH = DATA / "audio" / "obama_5s.wav"
YAWS = (-20, -15, -10, -5, 5, 10, 15, 20)
PITCHES = (-10, 10)
HELD_OUT = (DATA / "video" / "congressman_d_60s.mp4", DATA / "corpus" / "young_man_white_tshirt_latentsync_demo3.mp4")  # real pairs of people the head's shape was not tuned on
SHOWN = (-20, -10, 10, 20)  # yaws whose frames go into the picture
SESSION_8_RADII = np.array([1.45, 2.1, 1.9])  # the head ellipsoid before it was fitted to the face mesh
SESSION_8_CENTRE = np.array([0.0, -0.3, 1.0])  # and its centre (kept until 2026-12-01)
NARROW_RADII = np.array([1.35, 2.1, 1.75])  # the ellipsoid's outline through the mesh's points beside the ears (until 2026-12-01)


def measured_angles(video: Path, profile_folder: Path) -> np.ndarray:
    """Mean (pitch, yaw) in degrees of the output, fitted in the person's own face model."""
    motion = track_in_profile(video, profile_folder)
    return np.degrees(np.nanmean(motion.pose[:, :2], axis=0))


def mesh_alone(profile, work: Path) -> dict[tuple[str, int], float]:
    """The measured turn of the face mesh alone, drawn on grey at a clip frame's pose plus each
    angle: what the measurement reads for a face turned by exactly that angle."""
    fit = profile.clip_fit
    index = int(np.flatnonzero(fit.valid)[len(np.flatnonzero(fit.valid)) // 2])
    compositor = FaceCompositor(profile.face)
    width, height = profile.size
    cases = [("yaw", 0)] + [("yaw", a) for a in YAWS] + [("pitch", a) for a in PITCHES]
    frames = []
    for axis, angle in cases:
        pose = fit.pose[index].astype(np.float64).copy()
        pose[1 if axis == "yaw" else 0] += np.radians(angle)
        vertices = place_vertices(profile.face, fit.expression[index], pose)
        frames += [compositor.composite(np.full((height, width, 3), 128, np.uint8), vertices)[0]] * 5
    video = write_video(work / "mesh_alone.mp4", iter(frames), 25)
    angles = np.degrees(track_in_profile(video, profile.folder).pose[:, :2]).reshape(len(cases), 5, 2).mean(1)
    return {case: float(angles[i, 1 if case[0] == "yaw" else 0] - angles[0, 1 if case[0] == "yaw" else 0]) for i, case in enumerate(cases)}


def real_pairs(profile, work: Path, count: int = 6) -> list[dict]:
    """Turn clip frame A's head to the yaw of clip frame B, a real frame of the same person
    turned the other way (the 60 most turned frames each way, pitch and roll within 1.5 and 2
    degrees), as free view does (the head warped, the face drawn with A's own skin): does the
    measurement read as far a turn as it reads between the two real frames?"""
    from talkface.render.eyes import EyeMemory
    from talkface.render.frames import FrameStore
    from talkface.output import own_face

    fit = profile.clip_fit
    store = FrameStore(profile.folder / "frames.npz")
    degrees = np.degrees(fit.pose[:, :3])
    valid = np.flatnonzero(fit.valid)
    order = valid[np.argsort(degrees[valid, 1])]
    pairs = []
    for a in np.random.default_rng(0).permutation(order[:60]):
        match = [b for b in order[-60:] if abs(degrees[b, 0] - degrees[a, 0]) < 1.5 and abs(degrees[b, 2] - degrees[a, 2]) < 2]
        if match:
            pairs.append((int(a), int(match[0])))
    pairs = pairs[:count]
    pairs += [(b, a) for a, b in pairs]
    compositor, eyes = FaceCompositor(profile.face), EyeMemory.from_profile(profile.folder)
    frames, outlines = [], []
    with headwarp.HeadWarper(face=profile.face.mean_shape) as warper:
        for a, b in pairs:
            target = fit.pose[a].astype(np.float64).copy()
            target[1] = fit.pose[b, 1]
            background = warper(store[a], a, fit.pose[a].astype(np.float64), target)
            vertices = place_vertices(profile.face, fit.expression[a], target)
            out, coverage, _ = compositor.composite_keeping(background, vertices, own_face(profile, a), store[a])
            if eyes is not None:
                picks = eyes.select(eyes.keys_for(profile.face, fit.expression[a : a + 1], target[None]))[0]
                out = eyes.paste(out, vertices[profile.face.landmark_index], picks, coverage)
            frames += [store[a]] * 3 + [out] * 3 + [store[b]] * 3
            outlines.append(outline_agreement(profile, a, b, store[a], out, store[b]))
    video = write_video(work / "real_pairs.mp4", iter(frames), 25)
    yaw = np.degrees(track_in_profile(video, profile.folder).pose[:, 1]).reshape(len(pairs), 3, 3).mean(2)
    return [
        {
            "frame A": a, "frame B": b, "asked (fitted B - A, deg)": round(float(degrees[b, 1] - degrees[a, 1]), 1),
            "measured B - A (deg)": round(float(row[2] - row[0]), 1), "measured output - A (deg)": round(float(row[1] - row[0]), 1),
            "output / real B": round(float((row[1] - row[0]) / (row[2] - row[0])), 2),
            "outline IoU with B: A, output": f"{outline[0]:.2f}, {outline[1]:.2f}",
            "outline mismatch removed": round(float(1 - (1 - outline[1]) / max(1 - outline[0], 1e-6)), 2),
        }
        for (a, b), row, outline in zip(pairs, yaw, outlines)
    ]


def outline_agreement(profile, a: int, b: int, frame_a: np.ndarray, output: np.ndarray, frame_b: np.ndarray) -> tuple[float, float]:
    """How well the head's outline matches the real turned head's: the person's silhouette (selfie
    segmentation, firmed as the warp firms it) of frame A and of the output, each moved onto frame
    B by the fitted poses' shift and scale, against B's, as intersection over union in the head's
    region (from above the hair to the chin, two face half-widths either side of the face)."""
    from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

    from talkface.face.tracker import native_stderr_silenced

    fit = profile.clip_fit
    with native_stderr_silenced(), SelfieSegmentation(model_selection=0) as segmenter:
        mattes = [headwarp.firm_matte(segmenter.process(f).segmentation_mask.astype(np.float32)) > 0.5 for f in (frame_a, output, frame_b)]
    pose_a, pose_b = fit.pose[a].astype(np.float64), fit.pose[b].astype(np.float64)
    scale = pose_b[5] / pose_a[5]
    onto_b = np.array([[scale, 0, pose_b[3] - scale * pose_a[3]], [0, scale, pose_b[4] - scale * pose_a[4]]], np.float32)
    height, width = mattes[2].shape
    moved = [cv2.warpAffine(m.astype(np.uint8), onto_b, (width, height)) > 0 for m in mattes[:2]]
    face = place_vertices(profile.face, fit.expression[b], pose_b)[:, :2]
    half = (face[:, 0].max() - face[:, 0].min()) / 2
    centre = face[:, 0].mean()
    region = np.zeros((height, width), bool)
    region[int(max(face[:, 1].min() - 1.2 * half, 0)) : int(min(face[:, 1].max(), height)), int(max(centre - 2 * half, 0)) : int(min(centre + 2 * half, width))] = True
    return tuple(float((m & mattes[2] & region).sum() / max(((m | mattes[2]) & region).sum(), 1)) for m in moved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/freeview"), help="kept between runs: the profile and the videos")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    folder = args.work / "profile"
    profile = load_profile(folder) if (folder / "profile.json").exists() else finetune(PERSON, folder, FinetuneConfig(preset="draft"))
    config = SpeakConfig(pose="still")
    measured: dict[str, dict[tuple[str, int], np.ndarray]] = {}
    frames: dict[tuple[str, int], np.ndarray] = {}
    speed: dict[str, list[float]] = {}
    render_video = speak_module.render_video

    def face_only(*args, view=None, **kwargs):  # before: speak as it was, not told the view it asked for
        return render_video(*args, **kwargs)

    warper, radii, centre = output_module.HeadWarper, headwarp.HEAD_RADII, headwarp.HEAD_CENTRE

    def ellipsoid_only(recurring=False, face=None, mattes=None, plate=None):  # session 8's warp: the ellipsoid alone (the room as now)
        return warper(recurring, mattes=mattes, plate=plate)

    modes = ("before", "session 8", "after")
    for mode in modes:
        speak_module.render_video = face_only if mode == "before" else render_video
        output_module.HeadWarper = ellipsoid_only if mode == "session 8" else warper
        headwarp.HEAD_RADII = SESSION_8_RADII if mode == "session 8" else radii
        headwarp.HEAD_CENTRE = SESSION_8_CENTRE if mode == "session 8" else centre
        measured[mode], speed[mode] = {}, []
        cases = [("yaw", 0)] + [("yaw", a) for a in YAWS] + [("pitch", a) for a in PITCHES]
        for axis, angle in cases:
            out = args.work / f"{mode}_{axis}{angle:+d}.mp4"
            result = speak(SPEECH, out, profile, config, controls=Controls(**{axis: float(angle)}))
            speed[mode].append(result.frames_per_second)
            measured[mode][(axis, angle)] = measured_angles(out, profile.folder)
            if axis == "yaw" and angle in SHOWN:
                frames[(mode, angle)] = read_frames_at(out, [60])[60]
    speak_module.render_video = render_video
    output_module.HeadWarper, headwarp.HEAD_RADII, headwarp.HEAD_CENTRE = warper, radii, centre
    mesh = mesh_alone(profile, args.work)
    pairs = real_pairs(profile, args.work)
    people = [("obama_weekly_20s.mp4 (tuned on)", profile, args.work)]
    for video in HELD_OUT:  # profiles without a refiner (the real-pair test draws coarse faces), kept between runs
        person = args.work / f"profile_{video.stem}"
        other = load_profile(person) if (person / "profile.json").exists() else finetune(video, person, FinetuneConfig(refiner=False))
        (args.work / video.stem).mkdir(exist_ok=True)
        people.append((f"{video.name} (held out)", other, args.work / video.stem))
    held_out = []
    for label, shape in (("ears at the rim (x radius 1.35, until 2026-12-01)", NARROW_RADII), ("now", radii)):
        headwarp.HEAD_RADII = shape
        for name, person, work in people:
            others = pairs if shape is radii and work == args.work else real_pairs(person, work)
            ratios = np.array([p["output / real B"] for p in others])
            asked = np.abs([p["asked (fitted B - A, deg)"] for p in others])
            held_out.append({"clip": name, "head": label, "pairs": len(ratios), "asked turn (deg)": f"{asked.min():.0f}-{asked.max():.0f}",
                             "output / real B, mean": round(float(ratios.mean()), 2), "min-max": f"{ratios.min():.2f}-{ratios.max():.2f}",
                             "within 20%": f"{int((np.abs(ratios - 1) <= 0.2).sum())}/{len(ratios)}",
                             "outline mismatch removed, mean": round(float(np.mean([p["outline mismatch removed"] for p in others])), 2)})
    headwarp.HEAD_RADII = radii
    rows = []
    for axis, angles, column in (("yaw", YAWS, 1), ("pitch", PITCHES, 0)):
        for angle in angles:
            row = {"control": f"--{axis} {angle}", "mesh alone / asked": round(float(mesh[(axis, angle)] / angle), 2)}
            for mode in modes:
                turn = float(measured[mode][(axis, angle)][column] - measured[mode][("yaw", 0)][column])
                row[f"measured turn {mode} (deg)"] = round(turn, 1)
                row[f"{mode} / asked"] = round(turn / angle, 2)
            row["after / mesh alone"] = round(turn / mesh[(axis, angle)], 2)
            rows.append(row)
    timing = [{"mode": mode, "speak frames/s (mean of the runs, 5 s each)": round(float(np.mean(speed[mode])), 1)} for mode in speed]
    # picture: for each shown yaw, before above after, the head and shoulders
    profile_size = frames[("after", SHOWN[0])].shape
    crop = (slice(0, int(profile_size[0] * 0.8)), slice(int(profile_size[1] * 0.1), int(profile_size[1] * 0.9)))
    columns = [np.vstack([frames[(mode, a)][crop] for mode in modes]) for a in SHOWN]
    sheet = RESULTS / "freeview_frames.jpg"
    cv2.imwrite(str(sheet), np.hstack(columns)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    text = f"""# Free view: does the visible head turn by the angle asked for?

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s in all.
Command: `python benchmarks/freeview.py`. Profile: {PERSON.name}, preset draft; speech: {SPEECH.name}; `--pose still`.

`before`: as talkface was before whole-head warping: the backgrounds matched to the turned motion (so
keyframe matching picks the clip's most turned frames) and the face drawn on them; `session 8`: the
backgrounds matched to the motion as it was before the control (the clip plays naturally) and each
one's whole head (hair, ears, outline) turned by the asked angle as an ellipsoid whose front stood
a head-radius before the real face, so it carried the frame's brows, jaw line and ears further
sideways than the drawn face went (the face sat off-centre in its head: half the turn read);
`after`: the ellipsoid fitted to the face mesh (front at the cheeks, widest at the ears) and the
warp corrected to move the mesh's points as the drawn face moves them. Since 2026-11-30 that
correction is spread in passes (successive correction), which moves the mesh's points 0.88-0.92
of the way at 5-20 degrees (one weighted mean: 0.74-0.84); the face is drawn with the clip frame's own skin
carried through the mesh; and the room the head uncovers is filled from the room alone under a
firmed person matte (filled from the person beside it, skin had shown through a moved ear: a
ghost ear at 20 degrees). Before those changes (2026-11-29): after / asked 0.62-0.73, and 0.68
against real frames (the table below). Since 2026-12-01 the head is as deep as a real one (3.5
model units, 19 cm, centred 1.5 behind the face's centroid; it was 2.5 deep, centred at 1.0, the
front and the sides at the ears unchanged): the outline moves further. Before: after / asked
0.63-0.72, after / mesh alone 0.74-0.99, against real frames 0.77. Later on 2026-12-01 the
ellipsoid was widened over the ears (x radius 1.35 -> 1.5: the ears had sat at its rim, seen
edge-on, and the ear turning into view was stretched to twice its width at 20 degrees) and the
moved person's matte is firmed again (a stretched soft edge showed that ear half see-through).
Since 2026-12-06 `before` no longer shows talkface before whole-head warping: speak's backgrounds
now follow the drawn pose and are turned to it (render/background.py `follow_indices`, the follow
benchmark), so the turned motion's backgrounds are warped in that mode too (its turn read 0.24-0.52
of the asked on 2026-12-01, 0.52-0.93 now).
Measured: the output's mean head angle, fitted in the person's own face model to Face Mesh
landmarks tracked on the written video, against the same mode's output with no control.
`mesh alone`: the face mesh drawn on grey at exactly the asked angle, measured the same way: the
measurement's own reading of a true turn. The issue's goal: within 20% of the asked angle up to ±20°.

{markdown_table(rows)}

`after / mesh alone`: the output's turn over what the measurement reads for the mesh turned by
exactly that angle (the measurement's own shortfall taken out).

**Against real frames.** The measurement's shortfall on a drawn mesh need not be its shortfall on
a real head, so each clip frame A below is turned to the yaw fitted to a real clip frame B of the
same person, turned the other way (pitch and roll alike), as free view turns it, and measured
with A and B in one video: the output should read as far from A as B does.
Mean output / real B: **{np.mean([p["output / real B"] for p in pairs]):.2f}** (within 20%: {sum(abs(p["output / real B"] - 1) <= 0.2 for p in pairs)}/{len(pairs)}).
The outline, measured apart from the landmarks: the person's silhouette of A and of the output,
each moved onto B by the fitted poses' shift and scale, against B's, in the head's region (above
the chin): intersection over union, and the share of A's mismatch with B that the turn removed
(mean {np.mean([p["outline mismatch removed"] for p in pairs]):.2f}).

{markdown_table(pairs)}

The same test on two people the head's shape was not tuned on (its depth was fitted to the pairs
above; its width chosen looking at all three), with larger real turns: each clip finetuned without
a refiner (the test draws the coarse face), its six most turned pairs each way; with the ellipsoid's
outline through the mesh's points beside the ears (the ears at its rim) and as now, through the
ears' outer edge.

{markdown_table(held_out)}

{markdown_table(timing)}

![frames](freeview_frames.jpg)

Columns: --yaw {', '.join(str(a) for a in SHOWN)}; rows: before, session 8, after (frame 60).
"""
    save_results("freeview", text, {"rows": rows, "real_pairs": pairs, "held_out_pairs": held_out, "timing": timing})


if __name__ == "__main__":
    main()
