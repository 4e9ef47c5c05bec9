"""`finetune --image`: a profile from one photo, speaking; and every bad photo refused clearly."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkface.errors import CacheError, InputError, NoFaceError
from talkface.face.tracker import FaceMeshTracker
from talkface.face.topology import gap_ratio, LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT, UPPER_INNER_LIP
from talkface.media import read_frames, write_audio
from talkface.motion.genericface import GENERIC_FACE_PATH, GenericFace
from talkface.motion.lips import frontal_mouth_opening
from talkface.oneshot import finetune_image, read_photo
from talkface.render.mouth import GENERIC_MOUTH_PATH, GenericMouth
from talkface.profile import load_profile
from talkface.signals import pearson

PHOTO = Path(__file__).parent / "data" / "biden_portrait_320.jpg"


@pytest.fixture(scope="module")
def photo_profile(tmp_path_factory):
    return finetune_image(PHOTO, tmp_path_factory.mktemp("photo") / "biden")


def test_the_shipped_kit_loads_and_is_a_basis():
    kit = GenericFace.load()
    flat = kit.basis.reshape(len(kit.basis), -1).astype(np.float64)
    assert np.allclose(flat @ flat.T, np.eye(len(flat)), atol=1e-4)
    assert kit.blinks_per_minute > 5 and kit.blink_profile.any()
    assert np.degrees(kit.pose_spread[1]) > 0.5  # the head turns
    assert kit.meta["clips"], "the kit records the clips it was made from"


def test_a_photo_profile_speaks_with_the_mouth_following_the_motion(photo_profile, clip_audio, tmp_path):
    from talkface.speak import speak

    profile = load_profile(photo_profile.folder)
    assert profile.is_photo and profile.info.source.n_frames == 1 and not profile.has_refiner
    assert profile.size == (320, 320)
    audio = write_audio(tmp_path / "line.wav", clip_audio)
    result = speak(audio, tmp_path / "out.mp4", profile)
    frames = list(read_frames(result.video))
    assert len(frames) == result.n_frames == result.motion.n_frames
    openings, found = [], 0
    with FaceMeshTracker() as tracker:
        for frame in frames:
            faces = tracker.process(frame)
            found += bool(faces)
            openings.append(gap_ratio(faces[0][None], UPPER_INNER_LIP, LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT)[0] if faces else np.nan)
    assert found == len(frames), "a face in every frame"
    wanted = frontal_mouth_opening(profile.face, result.motion.expression)
    seen = np.array(openings)
    assert wanted.std() > 0.02, "the mouth moves"
    assert pearson(wanted, seen) > 0.7, "the video's mouth opens when the motion's does"
    # the head turns: the photo's frame is warped, not pasted still
    changes = [np.abs(frames[i].astype(int) - frames[0].astype(int))[:60].mean() for i in range(1, len(frames), 10)]
    assert max(changes) > 0.5, "the hair above the face moves with the head"


def test_a_large_photo_is_worked_on_at_the_chosen_size(tmp_path):
    import talkface

    assert talkface.finetune_image is finetune_image  # the library entry
    big = cv2.resize(cv2.imread(str(PHOTO)), (3000, 3000), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), big)
    profile = finetune_image(path, tmp_path / "big", size=400)
    assert profile.size == (400, 400)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: p.write_bytes(b""), InputError, "empty"),
        (lambda p: p.write_bytes(PHOTO.read_bytes()[:2000]), (InputError, NoFaceError), "not a readable image|no face"),
        (lambda p: p.write_text("hello, I am not a picture\n"), InputError, "not a readable image"),
        (lambda p: cv2.imwrite(str(p), np.full((300, 300, 3), 128, np.uint8)), NoFaceError, "no face"),
        (lambda p: cv2.imwrite(str(p), cv2.resize(cv2.imread(str(PHOTO)), (40, 40))), InputError, "at least 64 px"),
        (lambda p: cv2.imwrite(str(p), cv2.resize(cv2.imread(str(PHOTO)), (1600, 1600))[:80, :80]), NoFaceError, "no face|px wide"),
    ],
    ids=["empty", "truncated", "text", "no-face", "tiny", "face-cut-off"],
)
def test_bad_photos_are_one_clear_error(tmp_path, make, error, message):
    path = tmp_path / "photo.png" if "imwrite" in repr(make) else tmp_path / "photo.jpg"
    make(path)
    with pytest.raises(error, match=message):
        finetune_image(path, tmp_path / "profile")
    assert not (tmp_path / "profile" / "profile.json").exists()


def test_a_float_image_with_nan_is_read_or_refused_clearly(tmp_path):
    values = cv2.imread(str(PHOTO)).astype(np.float32) / 255
    values[:40] = np.nan
    path = tmp_path / "photo.tiff"
    cv2.imwrite(str(path), values)
    try:
        frame = read_photo(path)
    except InputError:
        return
    assert frame.dtype == np.uint8 and frame.shape[2] == 3


def test_a_video_given_as_photo_says_so(clip, tmp_path):
    with pytest.raises(InputError, match="looks like a video: use --video"):
        finetune_image(clip, tmp_path / "profile")


@pytest.mark.parametrize(
    "load, shipped, missing, cut",
    [(GenericFace.load, GENERIC_FACE_PATH, "no generic face kit", 5000), (GenericMouth.load, GENERIC_MOUTH_PATH, "missing or damaged", 300)],
    ids=["face-kit", "mouth"],
)
def test_missing_or_damaged_shipped_weights_are_a_clear_error(tmp_path, load, shipped, missing, cut):
    with pytest.raises(CacheError, match=missing):
        load(tmp_path / "none.safetensors")
    damaged = tmp_path / "cut.safetensors"
    damaged.write_bytes(shipped.read_bytes()[:cut])
    with pytest.raises(CacheError, match="damaged"):
        load(damaged)


def test_a_kit_of_the_wrong_shape_is_refused(tmp_path):
    from dataclasses import replace

    kit = GenericFace.load()
    replace(kit, basis=kit.basis[:, :10]).save(tmp_path / "wrong.safetensors")
    with pytest.raises(CacheError, match="not \\(K, 478, 3\\)"):
        GenericFace.load(tmp_path / "wrong.safetensors")
    assert GenericMouth.load().meta["clip"], "the mouth records the clip it came from"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkface", *args], capture_output=True, text=True, timeout=300)


def test_cli_needs_exactly_one_of_video_and_image(tmp_path):
    for args in ([], ["--video", "a.mp4", "--image", "b.jpg"]):
        result = _cli("finetune", *args)
        assert result.returncode == 2 and "either --video" in result.stderr and "Traceback" not in result.stderr


def test_cli_builds_a_photo_profile_and_a_kill_leaves_none_half_made(tmp_path):
    out = tmp_path / "p"
    process = subprocess.Popen([sys.executable, "-m", "talkface", "finetune", "--image", str(PHOTO), "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(2.5)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if (out / "profile.json").exists():  # killed after publishing (it takes ~0.5 s once loaded): complete
            assert load_profile(out).is_photo
    result = _cli("finetune", "--image", str(PHOTO), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "photo profile" in result.stdout and load_profile(out).is_photo


@pytest.fixture(scope="module")
def shut_profile(clip, tmp_path_factory):
    """A photo profile from the frame of the test clip whose mouth is most shut (its lips meet)."""
    folder = tmp_path_factory.mktemp("shut")
    photo = folder / "shut.png"
    cv2.imwrite(str(photo), _shut_frame(clip)[..., ::-1])
    return finetune_image(photo, folder / "profile")


def _shut_frame(clip) -> np.ndarray:
    """The frame of the test clip whose mouth is most shut (RGB)."""
    frames = list(read_frames(clip))
    with FaceMeshTracker() as tracker:
        faces = [tracker.process(frame)[0] for frame in frames]
    gaps = [gap_ratio(face[None], UPPER_INNER_LIP, LOWER_INNER_LIP, MOUTH_LEFT, MOUTH_RIGHT)[0] for face in faces]
    return frames[int(np.argmin(gaps))]


def _widest_mouth(profile, clip_audio, tmp_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The profile speaking the test clip's audio: the frame where the motion opens the mouth
    widest, the face's vertices there (pixels) and the mouth's opening (uint8 mask, eroded 1 px)."""
    from talkface.face.model import place_vertices
    from talkface.render.composite import INNER_LIPS
    from talkface.speak import speak

    result = speak(write_audio(tmp_path / "line.wav", clip_audio), tmp_path / "out.mp4", profile)
    widest = int(np.argmax(frontal_mouth_opening(profile.face, result.motion.expression)))
    frame = list(read_frames(result.video))[widest]
    placed = place_vertices(profile.face, result.motion.expression[widest], result.motion.pose[widest])
    hole = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(hole, [np.round(placed[list(INNER_LIPS), :2]).astype(np.int32)], 1)
    return frame, placed, cv2.erode(hole, np.ones((3, 3), np.uint8))


def test_a_closed_mouth_photo_speaks_with_borrowed_teeth(shut_profile, clip_audio, tmp_path):
    """A frame of the test clip with the mouth shut: the opened mouth shows teeth (the shipped
    generic mouth), not only the dark hole."""
    frame, placed, hole = _widest_mouth(shut_profile, clip_audio, tmp_path)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    x0, y0 = np.floor(placed[:468, :2].min(0)).astype(int)
    x1, y1 = np.ceil(placed[:468, :2].max(0)).astype(int)
    skin = np.median(grey[y0:y1, x0:x1])
    inside = grey[hole > 0]
    assert inside.size > 30, "the mouth opens"
    assert np.percentile(inside, 95) > 1.3 * skin, "teeth brighter than skin, not only a dark hole (measured 162 against 85; 85 without)"


def test_a_photos_teeth_part_where_they_meet_not_at_the_middle():
    """The opening's two halves part, column by column, along its darkest row (where the upper and
    lower teeth meet): parted at the middle, upper teeth longer than half the opening were cut square."""
    from talkface.render.composite import INNER_LIPS
    from talkface.render.mouth import PhotoMouth

    photo = read_photo(PHOTO)
    with FaceMeshTracker() as tracker:
        landmarks = tracker.process(photo)[0]
    points = landmarks[:, :2].astype(np.float64)
    top, bottom = points[UPPER_INNER_LIP], points[LOWER_INNER_LIP]
    assert np.linalg.norm(bottom - top) >= 4, "the portrait shows its teeth"
    opening = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(opening, [np.round(points[list(INNER_LIPS)]).astype(np.int32)], 1)
    yy, xx = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
    down = (bottom - top) / np.linalg.norm(bottom - top)
    depth = ((xx - top[0]) * down[0] + (yy - top[1]) * down[1]) / np.linalg.norm(bottom - top)
    painted = photo.copy()
    painted[opening > 0] = 235  # teeth all the way down
    meet = (opening > 0) & (np.abs(depth - 0.7) < 0.08)
    painted[meet] = 20  # where they meet: well below the middle
    mouth = PhotoMouth(painted, landmarks, INNER_LIPS)
    (upper, upper_anchor), _ = mouth.patches
    x0, y0 = np.round(upper_anchor - top).astype(int) * -1  # the patches' box corner
    alpha = upper[..., 3] > 0.5
    columns = [x for x in range(alpha.shape[1]) if abs(x + x0 - top[0]) <= 0.25 * mouth.width]  # the opening's middle part
    lowest = [np.flatnonzero(alpha[:, x]).max() + y0 for x in columns if alpha[:, x].any()]
    reach = [depth[row, x + x0] for row, x in zip(lowest, columns)]
    assert len(reach) >= 5 and 0.55 <= np.median(reach) <= 0.75  # at the dark line (0.62-0.78), not at 0.5


def _without_colour(image: np.ndarray, tint=(1.0, 1.0, 1.0), keep: float = 0.0) -> np.ndarray:
    """The image in grey (times a per-channel tint: sepia), with `keep` of its own colour left."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)[..., None]
    return np.clip((grey + keep * (image - grey)) * tint, 0, 255).astype(np.uint8)


def test_borrowed_teeth_take_on_a_photos_lack_of_colour():
    """The corpus mouth pasted into a black-and-white photo is grey, into a sepia one sepia
    (its chroma on the photo's line of chroma against lightness), into a faded one paler; a
    colour photo's is the corpus mouth as it is."""
    from talkface.render.mouth import _chroma, in_photo_colours

    mouth = GenericMouth.load()
    photo = read_photo(PHOTO)
    with FaceMeshTracker() as tracker:
        landmarks = tracker.process(photo)[0]

    def saturation(image):
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].mean()

    assert in_photo_colours(mouth.image, mouth.landmarks, photo, landmarks) is mouth.image
    grey = in_photo_colours(mouth.image, mouth.landmarks, _without_colour(photo), landmarks)
    assert saturation(grey) < 1 < 50 < saturation(mouth.image)
    sepia_photo = _without_colour(photo, (1.07, 0.95, 0.75))
    sepia = in_photo_colours(mouth.image, mouth.landmarks, sepia_photo, landmarks)
    line, colour = _chroma(sepia, mouth.landmarks)
    lightness = np.array([[1.0, 40.0], [1.0, 60.0], [1.0, 80.0]])
    tint = lightness @ _chroma(sepia_photo, landmarks)[0]  # (a, b) of the photo's sepia at those lightnesses (b about 11-22)
    assert colour < 0.15 * _chroma(mouth.image, mouth.landmarks)[1] and np.abs(lightness @ line - tint).max() < 1.5
    faded = in_photo_colours(mouth.image, mouth.landmarks, _without_colour(photo, keep=0.3), landmarks)
    assert saturation(grey) < saturation(faded) < 0.8 * saturation(mouth.image)


def test_a_black_and_white_photo_speaks_with_a_grey_mouth(clip, clip_audio, tmp_path):
    """A black-and-white photo with its mouth shut (the test clip's frame): the opened mouth
    shows the borrowed teeth, and in grey: the mouth's chroma in the video is the face's (the
    corpus mouth had been pasted in colour: red gums, white teeth in a grey face)."""
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), _without_colour(_shut_frame(clip))[..., ::-1])
    frame, placed, hole = _widest_mouth(finetune_image(photo, tmp_path / "profile"), clip_audio, tmp_path)
    face = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(placed[:468, :2]).astype(np.int32)), 1)
    lab = cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    assert hole.sum() > 30 and np.percentile(grey[hole > 0], 95) > 1.3 * np.median(grey[face > 0]), "teeth show"
    assert chroma[hole > 0].mean() < chroma[face > 0].mean() + 1.5, (chroma[hole > 0].mean(), chroma[face > 0].mean())


def test_dub_refuses_a_photo_profile_before_any_work(photo_profile, clip, clip_audio, tmp_path):
    from talkface.dub import dub

    with pytest.raises(InputError, match="photo profile.*dub without --person"):
        dub(clip, write_audio(tmp_path / "line.wav", clip_audio), tmp_path / "dubbed.mp4", person=photo_profile.folder)
    assert not (tmp_path / "dubbed.mp4").exists()


def test_a_phone_photo_stored_sideways_is_read_upright(tmp_path):
    """Phones store pictures sideways with an EXIF orientation tag; the face must come out upright."""
    image = pytest.importorskip("PIL.Image")
    sideways = image.open(PHOTO).transpose(image.Transpose.ROTATE_90)
    tags = image.Exif()
    tags[0x0112] = 6  # show rotated 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    sideways.save(path, exif=tags.tobytes())
    upright = read_photo(PHOTO)
    assert np.abs(read_photo(path).astype(int) - upright).mean() < 5


def test_a_photo_profiles_blinks_close_its_eyes(photo_profile):
    """The kit's blink is in the kit's coefficients: the photo's basis must keep their signs."""
    from talkface.face.topology import eye_openness
    from talkface.motion.model import generate_motion

    profile = load_profile(photo_profile.folder)
    features = np.zeros((250, len(profile.motion.generic.feature_mean)), np.float32)
    motion = generate_motion(profile.motion, profile.face, features, 25.0, seed=1, blink_rate=30)
    openness = eye_openness(motion.landmarks)
    assert openness.min() < 0.5 * np.median(openness)
    # a blink holds the lids shut in the mesh for PHOTO_BLINK_SHUT frames, never past shut: the kit's
    # averaged blink left a narrow-eyed photo's lids at a quarter of their gap (its iris showed, no
    # detector saw the blink); scaled by an unsigned gap, lids that had crossed read as open again
    from talkface.oneshot import PHOTO_BLINK_SHUT

    model = profile.face
    rest = eye_openness(model.vertices(np.zeros((1, model.n_expression)))[:, model.landmark_index], signed=True)[0]
    gaps = eye_openness(model.vertices(profile.motion.blinks.profile.astype(np.float64))[:, model.landmark_index], signed=True) / rest
    assert (np.abs(gaps) < 0.02).sum() == PHOTO_BLINK_SHUT and gaps.min() > -0.02


def test_a_photos_lips_close_until_they_touch_never_past(photo_profile, clip_audio):
    from dataclasses import replace

    from talkface.audio import extract
    from talkface.motion.lips import lip_offsets, neutral_lips, opening_from_offsets
    from talkface.oneshot import LIPS_MEET

    profile = load_profile(photo_profile.folder)
    features = extract(clip_audio, "mfcc+whisper")
    wide = replace(profile.motion, gain=2.0)  # a mouth moving twice as far presses its lips together harder

    def lowest(motion) -> float:
        expression = motion.predict_expression(features)
        return float(opening_from_offsets(neutral_lips(profile.face), lip_offsets(profile.face, expression), signed=True).min())

    assert lowest(replace(wide, closed_floor=None)) < LIPS_MEET - 0.02
    assert lowest(wide) > LIPS_MEET - 0.005
    assert lowest(profile.motion) > LIPS_MEET - 0.005


def test_a_closed_mouth_photos_lips_meet_never_past(clip_audio, tmp_path):
    """A photo whose lips meet already (matplotlib's sample portrait of Grace Hopper, US Navy,
    public domain; it ships with a dependency): the motion's centre is closed, so there is nothing
    to shrink the lips towards; the lips that would pass each other are opened until they meet
    instead (they were pressed 0.19 mouth widths through each other in 16% of frames), and the
    mouth still opens and shuts with the speech."""
    from dataclasses import replace

    import matplotlib.cbook

    from talkface.audio import extract
    from talkface.motion.lips import lip_offsets, neutral_lips, opening_from_offsets
    from talkface.oneshot import LIPS_MEET

    photo = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    profile = load_profile(finetune_image(photo, tmp_path / "hopper").folder)
    motion = profile.motion
    centre = opening_from_offsets(motion.neutral, (motion.centre @ motion.lip_basis)[None], signed=True)[0]
    assert centre <= motion.closed_floor, "this photo's mouth is closed: the case under test"
    features = extract(clip_audio, "mfcc+whisper")

    def openings(motion) -> np.ndarray:
        expression = motion.predict_expression(features)
        return opening_from_offsets(neutral_lips(profile.face), lip_offsets(profile.face, expression), signed=True)

    unheld = openings(replace(motion, closed_floor=None))
    held = openings(motion)
    assert unheld.min() < LIPS_MEET - 0.02, "the generic lips press through this mouth unheld"
    assert held.min() > LIPS_MEET - 0.005
    free = unheld >= LIPS_MEET
    np.testing.assert_allclose(held[free], unheld[free], atol=1e-6)  # frames that never pressed are left as they were
    assert held.max() > 0.15 and (held < 0.02).mean() > 0.1, "the mouth still opens wide and shuts"


def test_a_photo_profile_is_reenacted_rendered_and_batched_like_any_other(photo_profile, clip_audio, tmp_path):
    """The commands besides speak take a photo profile as they take a clip's: reenact drives the
    photo with another person's motion (their mouth followed), render redraws a saved motion
    (the same frames speak wrote), and a batch row speaks it."""
    import json

    from talkface.batch import run_batch
    from talkface.face import topology
    from talkface.media import probe
    from talkface.reenact import reenact
    from talkface.render_motion import render
    from talkface.speak import speak

    other = Path(__file__).parent / "data" / "other_person_2s.mp4"
    acted = reenact(other, tmp_path / "re.mp4", photo_profile)
    assert acted.n_frames == 50 and probe(acted.video).has_audio
    assert np.corrcoef(topology.mouth_openness(acted.motion.landmarks), acted.driver_mouth_openness)[0, 1] > 0.7
    with FaceMeshTracker() as tracker:
        assert all(tracker.process(frame) for frame in read_frames(acted.video))

    audio = write_audio(tmp_path / "line.wav", clip_audio)
    spoken = speak(audio, tmp_path / "spoken.mp4", photo_profile, motion_path=tmp_path / "m.npz")
    rendered = render(tmp_path / "m.npz", tmp_path / "rendered.mp4", photo_profile.folder, audio)
    a, b = list(read_frames(spoken.video)), list(read_frames(rendered.video))
    assert len(a) == len(b) == spoken.n_frames
    assert max(np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b)) < 1.0

    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"person": str(photo_profile.folder), "audio": str(audio), "out": "batch/out.mp4"}) + "\n")
    report = run_batch(manifest, workers=1)
    assert report.ok and len(list(read_frames(tmp_path / "batch" / "out.mp4"))) == spoken.n_frames


def test_a_photos_blinks_shut_its_own_eyes_in_the_video(photo_profile, clip_audio, tmp_path):
    # a portrait holds no shut eye: its own eyes are pasted with their lids closed as far as the
    # blink asks (render/eyelids.py); read on the written video by the face tracker
    from talkface.config import SpeakConfig
    from talkface.face.topology import eye_openness
    from talkface.render.eyes import EyeMemory
    from talkface.signals import blink_frames
    from talkface.speak import speak

    memory = EyeMemory.from_profile(photo_profile.folder)
    assert memory is not None and len(memory) == 1 and memory.closing is not None  # the photo's eyes, and the blink that shuts them
    audio = write_audio(tmp_path / "line.wav", clip_audio)
    result = speak(audio, tmp_path / "out.mp4", photo_profile.folder, SpeakConfig(blink_rate=40, seed=2))
    wanted = blink_frames(eye_openness(result.motion.landmarks))
    assert wanted
    seen = []
    with FaceMeshTracker() as tracker:
        for frame in read_frames(result.video):
            faces = tracker.process(frame)
            seen.append(eye_openness(faces[0][None])[0] if faces else np.nan)
    seen = np.array(seen)
    depths = [np.nanmin(seen[max(a - 2, 0) : b + 3]) / np.nanmedian(seen) for a, b in wanted]
    # a 320-px smiling face's narrow eyes: the tracker reads his shut lids at about 0.6 of open (the
    # mesh's squeezed slit as much); open eyes in a blink read 0.85 and more
    assert max(depths) < 0.75, f"every blink closes the eyes (least gap over open: {np.round(depths, 2)})"
