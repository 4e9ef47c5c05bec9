"""`talkface finetune --image`: a person profile from one photo.

A photo gives the face's shape and colours and one pose; everything that moves is borrowed
from the corpus's people (talkface.motion.genericface): the expression basis, the generic
audio->lip model with its amplitude calibration, head motion and blinks. The profile has one
frame, the photo at its working size; `speak` turns the whole head in it by the generated
pose (render/headwarp.py), since there are no other frames to choose from.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from talkface import progress
from talkface._version import __version__
from talkface.cache import file_digest
from talkface.config import FPS, TrackConfig
from talkface.errors import InputError, NoFaceError
from talkface.controls import lower_face_ramp
from talkface.face.fit import canonical_frame, frontal_uv, orient_triangles, fit_clip, head_motion_directions, landmark_basis
from talkface.face import topology
from talkface.face.model import FaceFit, MeshFaceModel, place_vertices
from talkface.face.texture import bake_texture
from talkface.face.tracker import FaceMeshTracker, FaceTrack, face_box
from talkface.storage import remove_stale_partials_in
from talkface.motion.blinks import BlinkModel, eyes_only, held_shut
from talkface.motion.brows import brow_axes
from talkface.motion.generic import GENERIC_PATH, GenericLipModel
from talkface.motion.genericface import GENERIC_FACE_PATH, GenericFace
from talkface.motion.lips import lip_basis, neutral_lips, opening_from_offsets
from talkface.motion.model import MotionModel, ridge_inputs
from talkface.motion.ridge import Ridge
from talkface.profile import Profile, ProfileInfo, SourceInfo, default_profile_dir, load_profile, publish_profile, save_profile_parts, withdraw_profile
from talkface.render.eyes import EyeMemory
from talkface.render.frames import save_frames

DEFAULT_SIZE = 720  # px: the longer side of a photo profile's frame (and of its videos)
MIN_SIZE = 64  # px: the smallest photo side accepted
MIN_FACE_PX = 48  # px: the narrowest face the tracker's landmarks are good enough on
TEXTURE_SIZE = 512  # texels: a portrait's face is often 300 px wide or more (256 measured softer)
CLOSED_MOUTH = 0.02  # inner-lip gap / mouth width of a closed mouth (the corpus clips' 10% quantile, median 0.018)
LIPS_MEET = 0.0  # the photo's lips may close until they touch, never past (the widened generic lips pressed 9% of frames through)
PHOTO_BLINK_SHUT = 3  # frames a blink holds the photo's lids shut in the mesh (the kit's blink, as it came, left
# a narrow-eyed smiling man's lids at 0.25 of their gap and the iris showed: no blink seen in 10)
UPPER_STILLNESS = 100.0  # weight keeping eyes, brows and forehead still while the lips move


def read_photo(path: Path, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The photo as RGB uint8, scaled so its longer side is at most `size` (even sides).

    Raises:
        InputError: missing, empty, not an image, too small or too large.
    """
    if not path.exists():
        raise InputError(f"no such photo: {path}")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file; give a photo (jpg, png, webp, bmp, tiff)")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes); give a photo (jpg, png, webp, bmp, tiff)")
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        hint = " (it looks like a video: use --video)" if path.suffix.lower() in (".mp4", ".mov", ".mkv", ".webm", ".avi") else ""
        raise InputError(f"{path} is not a readable image{hint}; give a photo (jpg, png, webp, bmp, tiff), whole and not truncated")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIZE:
        raise InputError(f"{path} is {width}x{height} px; a photo needs at least {MIN_SIZE} px on each side")
    scale = min(1.0, size / max(height, width))
    new_w, new_h = max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return np.ascontiguousarray(image[..., ::-1])


def find_face(frame: np.ndarray, source: str) -> np.ndarray:
    """(478, 3) pixel landmarks of the photo's largest face; NoFaceError when there is none."""
    with FaceMeshTracker(TrackConfig()) as tracker:
        faces = tracker.process(frame)
    if not faces:
        raise NoFaceError(
            f"no face found in {source}; give a photo where one face is clearly visible, roughly frontal, "
            f"at least {MIN_FACE_PX} px wide and not cut by the edge"
        )
    if len(faces) > 1:
        progress.log(f"note: {len(faces)} faces in {source}; using the largest")
    x0, y0, x1, y1 = face_box(faces[0])
    if x1 - x0 < MIN_FACE_PX:
        raise NoFaceError(f"the face in {source} is only {x1 - x0:.0f} px wide; give a photo where it is at least {MIN_FACE_PX} px wide (a closer crop)")
    return faces[0]


def photo_face_model(landmarks: np.ndarray, kit: GenericFace) -> MeshFaceModel:
    """The photo's shape as the mean face, with the kit's expression basis made free of this
    shape's own head motions (so pose and expression never trade off) and re-orthonormalised."""
    mean = canonical_frame(landmarks.astype(np.float64))
    flat = kit.basis.reshape(len(kit.basis), -1).astype(np.float64)
    span = head_motion_directions(mean)
    flat = flat - (flat @ span) @ span.T
    orthonormal, upper = np.linalg.qr(flat.T)
    # QR may flip a column's sign; unflipped, each direction is the kit's own, so the kit's
    # coefficients (the blink profile) mean the same here (a flipped one opened the eyes to blink)
    basis = (orthonormal * np.sign(np.diag(upper))).T.reshape(kit.basis.shape)
    return MeshFaceModel(
        mean_shape=mean.astype(np.float32),
        expression_basis=basis.astype(np.float32),
        expression_std=kit.spread.astype(np.float32),
        triangles=orient_triangles(topology.triangles(), mean),
        uv=frontal_uv(mean),
        texture=np.zeros((TEXTURE_SIZE, TEXTURE_SIZE, 3), np.uint8),
    )


def photo_motion_model(model: MeshFaceModel, pose: np.ndarray, kit: GenericFace, generic: GenericLipModel) -> MotionModel:
    """Lips from the generic model alone (its closed mouth moved onto the photo's mouth closed,
    never pressed past touching); head motion and blinks from the kit."""
    shut = closing_offset(neutral_lips(model), generic)
    closed = replace(generic, lip_mean=(generic.lip_mean - kit.closed_lips + shut).astype(np.float32))
    lip_map = lips_with_upper_face_still(model)
    width = ridge_inputs(np.zeros((1, len(generic.feature_mean))), np.zeros((1, len(generic.scale)))).shape[1]
    k = model.n_expression
    silent = Ridge(np.zeros(width, np.float32), np.ones(width, np.float32), np.zeros((width, k), np.float32), np.zeros(k, np.float32), 0.0)
    gain = 1.0  # the shipped generic model's output is already widened to the corpus's real amplitude (its meta 'gain')
    scale = float(pose[5])
    spread = np.concatenate([kit.pose_spread[:3], kit.pose_spread[3:] * scale]).astype(np.float32)
    head = replace(kit.pose, mean=pose.astype(np.float32), std=spread)
    blinks = BlinkModel(kit.blinks_per_minute, held_shut(eyes_only(kit.blink_profile, model), model, PHOTO_BLINK_SHUT))
    validation = {"generic_weight": 1.0, "gain": round(gain, 3)}
    return MotionModel(
        silent, closed, lip_map.astype(np.float32), 1.0, gain, (shut @ lip_map).astype(np.float32), 0, head, blinks,
        validation, brow_axes(model).astype(np.float32), 1.0, lip_basis=lip_basis(model),
        neutral=neutral_lips(model).astype(np.float32), closed_floor=LIPS_MEET,
    )


def lips_with_upper_face_still(model: MeshFaceModel, stillness: float = UPPER_STILLNESS, penalty: float = 1e-3) -> np.ndarray:
    """(120, K) lip offsets -> the expression whose lips match them while everything above the
    nose tip stays still. The kit's basis was learnt across people, so its directions that move
    the lips also carry eyes and brows along (one person's smile is another's squint); fitting
    the lips alone would drag those with them."""
    basis = landmark_basis(model)  # (K, 478, 3)
    lips = basis[:, topology.lip_indices()].reshape(len(basis), -1).T
    still = basis[:, np.flatnonzero(lower_face_ramp(model) == 0)].reshape(len(basis), -1).T
    gram = lips.T @ lips
    system = gram + stillness * still.T @ still + penalty * np.trace(gram) / len(basis) * np.eye(len(basis))
    return np.linalg.solve(system, lips.T).T


def closing_offset(neutral: np.ndarray, generic: GenericLipModel) -> np.ndarray:
    """(120,) lip offset that closes the photo's mouth (zero when it is closed already): along
    the generic lip basis's direction that changes the opening most, until the lips are as far
    apart as the corpus's closed mouths (bisection on the signed gap, so never past each other)."""
    if opening_from_offsets(neutral, np.zeros((1, 120)), signed=True)[0] <= CLOSED_MOUTH:
        return np.zeros(120, np.float32)
    steps = generic.basis * generic.scale[:, None]
    changes = opening_from_offsets(neutral, steps, signed=True) - opening_from_offsets(neutral, np.zeros((1, 120)), signed=True)[0]
    strongest = int(np.argmax(np.abs(changes)))
    direction = steps[strongest] * -np.sign(changes[strongest])
    low, high = 0.0, 8.0
    for _ in range(40):
        middle = (low + high) / 2
        if opening_from_offsets(neutral, (middle * direction)[None], signed=True)[0] > CLOSED_MOUTH:
            low = middle
        else:
            high = middle
    return (high * direction).astype(np.float32)


def finetune_image(
    image: str | Path,
    out: str | Path | None = None,
    size: int = DEFAULT_SIZE,
    kit_path: Path = GENERIC_FACE_PATH,
    generic_path: Path = GENERIC_PATH,
) -> Profile:
    """Build a person profile from one photo (seconds, no training).

    Args:
        image: a photo, painting or statue with one visible face (jpg, png, webp, bmp, tiff).
        out: the profile folder (default: $TALKFACE_HOME/profiles/<photo name>).
        size: the longer side of the working frame and of the videos made from it (px).

    Raises:
        InputError: not a readable image, too small; NoFaceError: no usable face.
        CacheError: the shipped generic models are missing or damaged.
    """
    started = time.perf_counter()
    image = Path(image)
    if not MIN_SIZE <= size <= 4096:
        raise InputError(f"--size {size} is out of range; use {MIN_SIZE}..4096 px")
    folder = Path(out) if out else default_profile_dir(image)
    kit, generic = GenericFace.load(kit_path), GenericLipModel.load(generic_path)
    progress.log(f"[1/3] finding the face in {image.name}")
    frame = read_photo(image, size)
    landmarks = find_face(frame, str(image))
    folder.mkdir(parents=True, exist_ok=True)
    withdraw_profile(folder)
    remove_stale_partials_in(folder)
    progress.log("[2/3] building the face from the photo and the generic models")
    model = photo_face_model(landmarks, kit)
    height, width = frame.shape[:2]
    nothing = np.full((1, 4), np.nan, np.float32)
    track = FaceTrack(landmarks[None].astype(np.float32), landmarks[None].astype(np.float32), nothing, FPS, width, height)
    fit = fit_clip(model, track)
    placed = place_vertices(model, fit.expression[0], fit.pose[0])
    model = replace(model, texture=bake_texture(model, {0: placed}, {0: frame}))
    motion = photo_motion_model(model, fit.pose[0].astype(np.float64), kit, generic)
    progress.log(f"[3/3] writing the profile to {folder}")
    save_frames(folder / "frames.npz", [frame])
    (folder / "mouth_patches.npz").unlink(missing_ok=True)  # the photo's one mouth would hide every word
    # the photo's own eyes, and made from them, its lids closed for the blinks (render/eyelids.py)
    EyeMemory.build(model, fit.expression, fit.pose, np.ones(1, bool), [frame], motion.blinks.deepest()).save(folder / EyeMemory.FILE)
    save_profile_parts(folder, model, FaceFit(fit.pose, fit.expression), motion, frame)
    source = SourceInfo(str(image), file_digest(image), 1, float(FPS), width, height, 1 / FPS, 0)
    info = ProfileInfo(
        name=image.stem, talkface=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S"), source=source,
        features="mfcc+whisper", blinks_per_minute=float(kit.blinks_per_minute),
        finetune_seconds=round(time.perf_counter() - started, 1), validation=motion.validation,
        generic={k: generic.meta.get(k) for k in ("trained", "command", "cross_validation")}, refiner=None, kind="photo",
    )
    publish_profile(folder, info)
    return load_profile(folder)
