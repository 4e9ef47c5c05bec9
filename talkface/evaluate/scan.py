"""One decoding pass over a generated video (and its reference): tracking plus per-frame image metrics."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from talkface import progress
from talkface.config import FPS
from talkface.errors import DependencyError, InputError
from talkface.evaluate import metrics
from talkface.evaluate.identity import face_embedding, models_folder
from talkface.face.tracker import FaceMeshTracker, FaceTrack, TrackBuilder, face_box
from talkface.media import MediaInfo, probe, read_frames, require_video

FACE_MARGIN = 0.1  # the face box used for face-region PSNR/SSIM grows by this fraction on each side
IDENTITY_FRAMES = 8  # frames per video whose dlib embeddings are averaged
LENGTH_TOLERANCE = 0.05  # videos whose lengths differ by more than this fraction are refused


@dataclass
class Scan:
    """What one pass collected. Per-frame arrays have one entry per compared frame."""

    generated: FaceTrack
    reference: FaceTrack | None
    generated_info: MediaInfo
    reference_info: MediaInfo | None
    mouth_sharpness: dict[str, np.ndarray]
    psnr_full: np.ndarray
    ssim_full: np.ndarray
    psnr_face: np.ndarray
    ssim_face: np.ndarray
    embeddings: dict[str, list[np.ndarray]]
    sheet: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    resized: bool = False


def _n_frames(info: MediaInfo) -> int:
    return int(round(info.duration * FPS))


def _face_region(frame: np.ndarray, landmarks: np.ndarray) -> tuple[slice, slice]:
    x0, y0, x1, y1 = face_box(landmarks)
    grow_x, grow_y = (x1 - x0) * FACE_MARGIN, (y1 - y0) * FACE_MARGIN
    height, width = frame.shape[:2]
    rows = slice(max(0, int(y0 - grow_y)), min(height, int(np.ceil(y1 + grow_y))))
    cols = slice(max(0, int(x0 - grow_x)), min(width, int(np.ceil(x1 + grow_x))))
    return rows, cols


def scan(generated: Path, reference: Path | None, sheet_count: int = 6) -> Scan:
    """Decode, track and measure the generated video, frame-locked with the reference if given.

    Raises:
        InputError: unreadable files, or lengths that differ by more than 5%.
    """
    generated_info = probe(generated)
    require_video(generated_info)
    reference_info = probe(reference) if reference else None
    n_frames = _n_frames(generated_info)
    if reference_info is not None:
        require_video(reference_info)
        n_reference = _n_frames(reference_info)
        if abs(n_frames - n_reference) > max(2, LENGTH_TOLERANCE * n_reference):
            raise InputError(
                f"{generated} has {n_frames} frames and {reference} has {n_reference}; evaluate compares videos "
                "of the same length (trim one, or leave out --reference for reference-free metrics)"
            )
        n_frames = min(n_frames, n_reference)
    sheet_at = set(np.linspace(0, max(n_frames - 1, 0), sheet_count).round().astype(int).tolist())
    identity_at = set(np.linspace(0, max(n_frames - 1, 0), IDENTITY_FRAMES + 2)[1:-1].round().astype(int).tolist())
    try:
        models_folder()
    except DependencyError:  # dlib's face models are optional: without them identity is left out, the rest stands
        identity_at = set()
    names = ["generated"] + (["reference"] if reference else [])
    builders = {name: TrackBuilder() for name in names}
    sharp = {name: [] for name in names}
    embeddings: dict[str, list[np.ndarray]] = {name: [] for name in names}
    per_frame = {key: [] for key in ("psnr_full", "ssim_full", "psnr_face", "ssim_face")}
    sheet: dict[int, dict[str, np.ndarray]] = {}
    streams = [read_frames(generated)] + ([read_frames(reference)] if reference else [])
    size = (reference_info or generated_info).width, (reference_info or generated_info).height
    resized = reference_info is not None and (generated_info.width, generated_info.height) != size
    with contextlib.ExitStack() as stack:
        trackers = {name: stack.enter_context(FaceMeshTracker()) for name in names}
        advance = stack.enter_context(progress.bar("evaluating", n_frames))
        for index, frames in enumerate(zip(*streams)):
            if index >= n_frames:
                break
            frames = dict(zip(names, frames))
            if resized:
                frames["generated"] = cv2.resize(frames["generated"], size, interpolation=cv2.INTER_AREA)
            faces = {name: builders[name].add(trackers[name].process(frames[name])) for name in names}
            for name in names:
                face = faces[name]
                sharp[name].append(metrics.sharpness(metrics.mouth_crop(frames[name], face)) if face is not None else np.nan)
                if index in identity_at and face is not None:
                    embeddings[name].append(face_embedding(frames[name], face))
            if reference:
                _compare_frames(frames["generated"], frames["reference"], faces["reference"], per_frame)
            if index in sheet_at:
                sheet[index] = {name: frames[name] for name in names} | {f"{n}_face": faces[n] for n in names}
            advance(1)
    width, height = size
    tracks = {name: builders[name].finish(generated if name == "generated" else reference, FPS, width, height, single_face=False) for name in names}
    return Scan(
        generated=tracks["generated"],
        reference=tracks.get("reference"),
        generated_info=generated_info,
        reference_info=reference_info,
        mouth_sharpness={name: np.array(values) for name, values in sharp.items()},
        embeddings=embeddings,
        sheet=sheet,
        resized=resized,
        **{key: np.array(values) for key, values in per_frame.items()},
    )


def _compare_frames(generated: np.ndarray, reference: np.ndarray, reference_face, per_frame: dict) -> None:
    per_frame["psnr_full"].append(metrics.psnr(generated, reference))
    per_frame["ssim_full"].append(metrics.ssim(generated, reference))
    if reference_face is None:
        per_frame["psnr_face"].append(np.nan)
        per_frame["ssim_face"].append(np.nan)
        return
    rows, cols = _face_region(reference, reference_face)
    per_frame["psnr_face"].append(metrics.psnr(generated[rows, cols], reference[rows, cols]))
    per_frame["ssim_face"].append(metrics.ssim(generated[rows, cols], reference[rows, cols]))
