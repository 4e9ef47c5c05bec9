"""Benchmark: reenactment and the controls, each measured in the direction asked.

The person is obama_weekly_20s.mp4, finetuned with the refiner (preset given on the command
line, default 'draft' to keep this benchmark short).
1. Reenactment driven by senator_a_8s.mp4 (another person): the output's mouth opening (tracked
   from the written video) against the driver's, and the identity distance to the real person.
2. speak on obama_5s.wav with each control: estimated yaw of the output (fitted in the person's
   model), head-motion std, mouth-opening std, blinks, and background pixels replaced.
Writes benchmarks/results/controls.md, controls.json and controls_frames.jpg.

Usage: python benchmarks/controls.py [--preset draft]
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
from talkface.config import FinetuneConfig, SpeakConfig  # noqa: E402
from talkface.controls import Controls  # noqa: E402
from talkface.evaluate.identity import face_embedding, identity_distance  # noqa: E402
from talkface.evaluate.metrics import blink_frames, eye_openness, pearson  # noqa: E402
from talkface.face import topology  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import read_frames, read_frames_at  # noqa: E402
from talkface.reenact import reenact  # noqa: E402
from talkface.speak import speak  # noqa: E402
from talkface.track import track_in_profile  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PERSON = DATA / "video" / "obama_weekly_20s.mp4"
DRIVER = DATA / "video" / "senator_a_8s.mp4"
SPEECH = DATA / "audio" / "obama_5s.wav"
GREEN = (0, 177, 64)
EDGE_PX = 12  # background pixels this close to the person's outline count as hair edge


def embeddings(video: Path, count: int = 12) -> list[np.ndarray]:
    """dlib face embeddings of `count` evenly spaced frames."""
    landmarks = track_video(video).landmarks
    picks = np.linspace(0, len(landmarks) - 1, count).astype(int).tolist()
    frames = read_frames_at(video, picks)
    return [face_embedding(frames[i], landmarks[i]) for i in picks]


def identity(video: Path, reference: Path) -> float:
    return identity_distance(embeddings(video), embeddings(reference))


def replaced_fraction(plain: Path, swapped: Path) -> float:
    """Share of the background pixels (per a segmentation of the un-replaced video, minus an edge
    band) that show the new colour in the replaced one."""
    from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

    hits = total = 0
    with SelfieSegmentation(model_selection=0) as segmenter:
        for before, after in zip(read_frames(plain), read_frames(swapped)):
            person = segmenter.process(before).segmentation_mask > 0.5
            background = ~cv2.dilate(person.astype(np.uint8), np.ones((2 * EDGE_PX + 1,) * 2, np.uint8)).astype(bool)
            close = np.abs(after.astype(int) - GREEN).max(-1) <= 24
            hits += int((close & background).sum())
            total += int(background.sum())
    return hits / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="draft")
    args = parser.parse_args()
    rows, strip = [], []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        profile = finetune(PERSON, folder / "profile", FinetuneConfig(preset=args.preset))
        finetune_seconds = time.perf_counter() - started
        # 1. reenactment
        started = time.perf_counter()
        result = reenact(DRIVER, folder / "reenact.mp4", profile)
        reenact_seconds = time.perf_counter() - started
        tracked = track_video(result.video)
        driver = track_video(DRIVER)
        reenactment = {
            "driver": DRIVER.name,
            "frames": result.n_frames,
            "mouth_r_vs_driver (output tracked)": round(pearson(topology.mouth_openness(tracked.landmarks), topology.mouth_openness(driver.landmarks)), 3),
            "identity_distance_to_person": round(identity(result.video, PERSON), 3),
            "identity_distance_to_driver": round(identity(result.video, DRIVER), 3),
            "seconds": round(reenact_seconds, 1),
        }
        picks = [20, 80, 140]
        driver_frames, reenacted = read_frames_at(DRIVER, picks), read_frames_at(result.video, picks)
        strip.append(np.concatenate([cv2.resize(driver_frames[i], (240, 240)) for i in picks] + [cv2.resize(reenacted[i], (240, 240)) for i in picks], 1))
        # 2. controls on speak
        cases = {
            "baseline": (SpeakConfig(), Controls(), None),
            "--yaw 10": (SpeakConfig(), Controls(yaw=10), None),
            "--yaw -10": (SpeakConfig(), Controls(yaw=-10), None),
            "--pose still": (SpeakConfig(pose="still"), Controls(), None),
            "--pose-scale 1.5": (SpeakConfig(), Controls(pose_scale=1.5), None),
            "--frontal": (SpeakConfig(), Controls(frontal=True), None),
            "--mouth-scale 1.5": (SpeakConfig(), Controls(mouth_scale=1.5), None),
            "--blink-rate 0": (SpeakConfig(blink_rate=0), Controls(), None),
            "--blink-rate 60": (SpeakConfig(blink_rate=60), Controls(), None),
            "--background green": (SpeakConfig(), Controls(), "green"),
        }
        videos = {}
        for name, (config, controls, background) in cases.items():
            spoken = speak(SPEECH, folder / f"{len(videos)}.mp4", profile, config, controls=controls, background=background)
            videos[name] = spoken.video
            measured = track_in_profile(spoken.video, profile.folder)  # the output's pose in the person's own model
            angles = np.degrees(measured.pose[:, :3])
            output_track = track_video(spoken.video)
            openness = eye_openness(output_track.landmarks)
            rows.append(
                {
                    "control": name,
                    "mean yaw (deg)": round(float(np.mean(angles[:, 1])), 2),
                    "mean pitch (deg)": round(float(np.mean(angles[:, 0])), 2),
                    "yaw std (deg)": round(float(np.std(angles[:, 1])), 2),
                    "mouth opening std": round(float(np.std(topology.mouth_openness(output_track.landmarks))), 4),
                    "blinks (output tracked)": len(blink_frames(openness)),
                    "blinks (motion)": len(blink_frames(eye_openness(spoken.motion.landmarks))),
                }
            )
        base = rows[0]
        for row in rows:
            row["yaw shift vs baseline"] = round(row["mean yaw (deg)"] - base["mean yaw (deg)"], 2)
            row["yaw std ratio"] = round(row["yaw std (deg)"] / base["yaw std (deg)"], 2)
            row["mouth std ratio"] = round(row["mouth opening std"] / base["mouth opening std"], 2)
        background = {"background pixels replaced (away from hair edge)": round(replaced_fraction(videos["baseline"], videos["--background green"]), 4)}
        for pick in (40, 90):
            tiles = []
            for name in ("baseline", "--yaw 10", "--pose-scale 1.5", "--frontal", "--mouth-scale 1.5", "--background green"):
                tile = cv2.resize(read_frames_at(videos[name], [pick])[pick], (240, 240))
                cv2.putText(tile, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
                tiles.append(tile)
            strip.append(np.concatenate(tiles, 1))
        RESULTS.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(RESULTS / "controls_frames.jpg"), np.concatenate(strip, 0)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    markdown = (
        f"# Reenactment and controls benchmark\n\ntalkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores. "
        f"Command: `python benchmarks/controls.py --preset {args.preset}` (finetune took {finetune_seconds:.0f} s).\n\n"
        f"## Reenactment: `{PERSON.name}`'s person driven by `{DRIVER.name}`\n\n" + markdown_table([reenactment])
        + "\n\n## Controls on `speak` (`obama_5s.wav`, seed 0)\n\nYaw and pitch are the output's head angles fitted in the person's own "
        "face model (`track --person`); mouth opening and blinks are tracked from the written video.\n\n" + markdown_table(rows)
        + "\n\n" + markdown_table([background])
        + "\n\nFrames: `controls_frames.jpg` (row 1: driver, then reenacted; rows 2-3: two moments of six of the controls, labelled).\n"
    )
    save_results("controls", markdown, {"version": __version__, "reenactment": reenactment, "controls": rows, "background": background})


if __name__ == "__main__":
    main()
