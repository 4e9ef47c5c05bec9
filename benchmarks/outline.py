"""Benchmark: a turned head's outline. Does `--yaw` leave a ghost (a second outline) beside the head?

Clip profiles (Obama's draft profile, tuned on; three corpus people no model or setting was tuned on,
profiles without a refiner) and photo profiles (biden_portrait.jpg; matplotlib's Grace Hopper, held
out) speak obama_5s.wav with the head held still (`--pose still`) at --yaw 0, +-15 and +-20. On every
SAMPLE_EVERY-th frame of each written video, the head's outline (the person matte's edge above the chin
that Face Mesh finds on the output) is walked and a second edge running alongside it, 4-15 px outside
and at least 0.35 as strong, parted from the outline by a dip, is looked for
(talkface/evaluate/outline.py): the share of the outline so doubled (stretches of at least 12 px),
the longest stretch, and the share doubled by the head's old outline (the second edge within 3 px of
where the unturned video's head outline was in the same frame: the ghost itself). The unturned video
(--yaw 0) is the baseline: the room's own edges beside the head (a flag's cord, a column) read there too.
Each turned video is made twice in the run: with the warp free to spread the side of the head as
wide as its ellipsoid says (before) and with no part of the frame spread wider than MAX_STRETCH
along a row or a column (after; render/headwarp.py `cap_stretch`). Both fill the room a turn
uncovers as render/headwarp.py does (the room mirrored into the gap near its edge).
Writes benchmarks/results/outline.md, outline.json and outline_crops.jpg (100% crops of the head at
--yaw -20 and +20 for photos, a clip's worse side, before and after, beside --yaw 0, the doubled
points marked in red).

Usage: python benchmarks/outline.py [--work out/outline] [--people obama,german,...]
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
from talkface.render.headwarp import MAX_STRETCH, MIRROR_REACH  # noqa: E402
from talkface.evaluate.outline import MIN_RUN, OLD_NEAR, OUTSIDE_BAND, doubled_outline, head_outline  # noqa: E402
from talkface.face.tracker import FaceMeshTracker  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import read_frames  # noqa: E402
from talkface.oneshot import finetune_image  # noqa: E402
from talkface.profile import load_profile  # noqa: E402
import talkface.render.headwarp as headwarp  # noqa: E402
from talkface.render.headwarp import PersonMatter  # noqa: E402
from talkface.speak import speak  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPEECH = DATA / "audio" / "obama_5s.wav"
YAWS = (0, -20, -15, 15, 20)
SHOWN = (-20, 20)  # yaws whose crops go into the picture
SAMPLE_EVERY = 4  # frames
CHIN = 152  # Face Mesh landmark: the chin's lowest point
SIDE_REACH = 0.35  # the band beside the face whose detail is read: this share of the face's width out from its edge


def sources() -> dict[str, tuple[str, Path, str]]:
    """name -> (kind, source file, how it was tuned)."""
    import matplotlib.cbook

    corpus = DATA / "corpus"
    return {
        "obama": ("clip", DATA / "video" / "obama_weekly_20s.mp4", "tuned on; draft profile"),
        "german": ("clip", corpus / "german_man_newsdesk_mimictalk_german20s.mp4", "held out; no refiner"),
        "chinese": ("clip", corpus / "chinese_woman_vlog_joygen_example15s.mp4", "held out; no refiner"),
        "bald": ("clip", corpus / "bald_man_capitol_infinitetalk_ref_video.mp4", "held out; no refiner"),
        "biden_portrait": ("photo", DATA / "image" / "biden_portrait.jpg", "seen in development"),
        "grace_hopper": ("photo", Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), "held out"),
    }


def profile_for(name: str, kind: str, source: Path, work: Path):
    """The person's profile, kept in `work` between runs."""
    folder = work / name / "profile"
    if (folder / "profile.json").exists():
        return load_profile(folder)
    if kind == "photo":
        return finetune_image(source, folder)
    return finetune(source, folder, FinetuneConfig(preset="draft") if name == "obama" else FinetuneConfig(refiner=False))




def read_outlines(video: Path, unturned: list[dict] | None = None) -> list[dict]:
    """Every SAMPLE_EVERY-th frame: the frame, its outline reading, the head's outline and the face's
    landmarks; with the unturned video's readings, the second edges on its outline are told apart."""
    old = {r["index"]: r["outline"] for r in unturned or []}
    readings = []
    with FaceMeshTracker() as tracker, PersonMatter() as matter:
        for index, frame in enumerate(read_frames(video)):
            if index % SAMPLE_EVERY:
                continue
            faces = tracker.process(frame)
            if not faces:
                continue
            matte, chin = matter(frame), float(faces[0][CHIN, 1])
            reading = doubled_outline(frame, matte, chin, old.get(index))
            readings.append({"index": index, "frame": frame, "reading": reading, "face": faces[0][:, :2], "outline": head_outline(matte, chin)[0],
                             "side detail": side_detail(frame, matte, faces[0][:468, :2])})
    return readings


def side_detail(frame: np.ndarray, matte: np.ndarray, face: np.ndarray) -> float:
    """Across / along detail beside the face: in the band of the person (matte above 0.5) just
    outside the face's outline (within SIDE_REACH of its width, between its top and its chin),
    the mean horizontal gradient over the mean vertical one. A part of the frame spread sideways
    (a turned head's side stretched several times its width: a smeared second cheek, an ear
    grown into a flap) keeps its vertical detail and loses its horizontal: the ratio falls
    below the unturned video's."""
    hull = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(face).astype(np.int32)), 1)
    width = float(np.ptp(face[:, 0]))
    reach = max(int(SIDE_REACH * width), 3)
    band = cv2.dilate(hull, np.ones((1, 2 * reach + 1), np.uint8)) & (1 - cv2.dilate(hull, np.ones((3, 3), np.uint8)))
    band[: int(face[:, 1].min())] = 0
    band[int(face[CHIN, 1]) :] = 0
    band &= (matte > 0.5).astype(np.uint8)
    if band.sum() < 50:
        return float("nan")
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    across = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3))[band > 0].mean()
    along = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))[band > 0].mean()
    return float(across / max(along, 1e-6))


def head_crop(frame: np.ndarray, face: np.ndarray) -> tuple[slice, slice]:
    """The head at 100%: the face box grown by half its width each side and 0.9 of its height above."""
    x0, y0 = face.min(axis=0)
    x1, y1 = face.max(axis=0)
    width, height = x1 - x0, y1 - y0
    rows = slice(int(max(y0 - 0.9 * height, 0)), int(min(y1 + 0.1 * height, frame.shape[0])))
    columns = slice(int(max(x0 - 0.5 * width, 0)), int(min(x1 + 0.5 * width, frame.shape[1])))
    return rows, columns


def crops(still: list[dict], before: list[dict], turned: list[dict]) -> np.ndarray:
    """Unturned, turned with the flat fill (before), turned now, and turned now with its doubled
    points in red, at the frame where either turned video has its longest doubled stretch."""
    worst = max(before + turned, key=lambda r: r["reading"].longest)
    same, then, worst = (min(video, key=lambda r: abs(r["index"] - worst["index"])) for video in (still, before, turned))
    rows, columns = head_crop(worst["frame"], worst["face"])
    marked = worst["frame"].copy()
    reading = worst["reading"]
    for (x, y), ghost in zip(reading.points[reading.doubled].astype(int), reading.on_old[reading.doubled]):
        cv2.circle(marked, (int(x), int(y)), 1, (255, 0, 255) if ghost else (255, 0, 0), -1)
    return np.hstack([same["frame"][rows, columns], then["frame"][rows, columns], worst["frame"][rows, columns], marked[rows, columns]])


def summary(readings: list[dict]) -> dict:
    shares = np.array([r["reading"].share for r in readings])
    longest = np.array([r["reading"].longest for r in readings])
    return {
        "frames read": len(readings),
        "outline doubled (mean share)": round(float(shares.mean()), 3) if len(shares) else float("nan"),
        "frames with a doubled stretch": f"{int((longest > 0).sum())}/{len(readings)}",
        "longest stretch (px)": int(longest.max()) if len(longest) else 0,
        "doubled by the old outline (mean share)": round(float(np.mean([r["reading"].ghost_share for r in readings])), 3) if readings else float("nan"),
        "frames with it": f"{sum(r['reading'].on_old.any() for r in readings)}/{len(readings)}",
        "side detail across / along": round(float(np.nanmedian([r["side detail"] for r in readings])), 2) if readings else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/outline"), help="kept between runs: the profiles and the videos")
    parser.add_argument("--keep-videos", action="store_true", help="measure the videos a previous run wrote instead of speaking again")
    parser.add_argument("--people", default=",".join(sources()), help="comma-separated names from: " + ", ".join(sources()))
    args = parser.parse_args()
    started = time.perf_counter()
    people = sources()
    rows, panels, shown = [], [], []
    for name in args.people.split(","):
        kind, source, tuned = people[name]
        profile = profile_for(name, kind, source, args.work)
        readings = {}
        for mode, yaw in [("after", 0)] + [(mode, yaw) for yaw in YAWS[1:] for mode in ("before", "after")]:
            out = args.work / name / f"yaw{yaw:+d}{'_before' if mode == 'before' else ''}.mp4"
            headwarp.MAX_STRETCH = np.inf if mode == "before" else MAX_STRETCH
            if not (args.keep_videos and out.exists()):
                speak(SPEECH, out, profile, SpeakConfig(pose="still", seed=0), controls=Controls(yaw=float(yaw)))
            readings[(mode, yaw)] = read_outlines(out, readings.get(("after", 0)))
            row = {"person": name, "profile": f"{kind}, {tuned}", "size": "x".join(map(str, profile.size)), "--yaw": yaw, "stretch": mode if yaw else "-"}
            rows.append(row | summary(readings[(mode, yaw)]))
        headwarp.MAX_STRETCH = MAX_STRETCH
        # a clip's frames: its worse side only (the sheet stays a readable size)
        worse = max(SHOWN, key=lambda yaw: np.mean([r["reading"].share for r in readings[("after", yaw)]]))
        for yaw in SHOWN if kind == "photo" else (worse,):
            panels.append(crops(readings[("after", 0)], readings[("before", yaw)], readings[("after", yaw)]))
            shown.append(f"{name} {yaw:+d}")
    width = max(p.shape[1] for p in panels)
    sheet = np.vstack([np.pad(p, ((0, 4), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels])
    cv2.imwrite(str(RESULTS / "outline_crops.jpg"), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    text = f"""# A turned head's outline: a ghost beside it?

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s in all.
Command: `python benchmarks/outline.py{' --keep-videos' if args.keep_videos else ''}`{' (measured on the videos an earlier run made)' if args.keep_videos else ''}. Speech: {SPEECH.name}; `speak --pose still --yaw Y`, seed 0.

Each video's every {SAMPLE_EVERY}th frame: the head's outline (the person matte's edge above the chin
Face Mesh finds) walked every 2 px, and outward along each point's normal, {OUTSIDE_BAND[0]}-{OUTSIDE_BAND[1]} px out, an edge
running along the outline at least 0.35 as strong as the outline's own looked for; a point counts as
doubled where such edges run on at nearly the same distance for at least {MIN_RUN} px of outline (a
ghost runs along the head; the room's texture gives short scattered hits). `--yaw 0` is each person's
baseline: the room's own edges beside the head read there too (a flag's cord, a window's bar, a
column). A ghost shows as a turned row above its person's `--yaw 0` row, and as a second edge on
the head's old outline: `doubled by the old outline`, where the second edge lies within {OLD_NEAR:.0f} px
of the same frame's head outline at `--yaw 0` (the same clip frame, unturned).

`side detail across / along`: beside the face (the person within {SIDE_REACH} of the face's width out
from its outline, between its top and its chin), the mean horizontal gradient over the mean vertical
one, median over the frames read: a part spread sideways keeps its vertical detail and loses its
horizontal, so a smeared band beside the face reads lower than the unturned video's.

`stretch`: how far the warp may spread a part of the frame. `before`: as far as the head's ellipsoid
says: where its rim turns into view, a sliver the frame saw edge-on (hair, an ear, the skin beyond
Face Mesh's outline) spreads over a band several times as wide (a held-out photo's ear and cheek
edge read as a smeared flap beside the drawn cheek); `after`: no part wider than {MAX_STRETCH} times along
a row or a column (render/headwarp.py `cap_stretch`). Both measured in this run. The room a turn
uncovers is filled as render/headwarp.py does in both (within {MIRROR_REACH} px of the room, the room
mirrored across the gap's edge; a clip's from its room plate).

{markdown_table(rows)}

![crops](outline_crops.jpg)

Rows, top to bottom: {', '.join(shown)}. Each row: `--yaw 0`, then turned without the stretch cap
(before), turned now, and turned now with its doubled points in red (magenta: on the old outline),
at the frame where either turned video has its longest doubled stretch; 100%.
"""
    save_results("outline", text, {"rows": rows})


if __name__ == "__main__":
    main()
