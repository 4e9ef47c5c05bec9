"""`talkface track`: decode, track, reconstruct and draw an overlay, with a stage cache."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from talkface import progress
from talkface._version import __version__
from talkface.cache import StageCache, file_digest, make_key
from talkface.config import FPS, FinetuneConfig, ReconstructConfig, TrackConfig
from talkface.errors import ClipTooShortError, NoFaceError
from talkface.face.fit import build_model, reprojection_error
from talkface.face.model import FaceFit, MeshFaceModel, project_landmarks
from talkface.face.overlay import draw_overlay
from talkface.face.texture import bake_texture, frontal_frames
from talkface.face.tracker import FaceTrack, format_ranges, track_video
from talkface.media import load_audio, probe, read_frames, read_frames_at, require_video, write_video
from talkface.media.clock import clock_key
from talkface.motion import Motion
from talkface.storage import load_npz, save_npz, write_json

TRACK_FORMAT = 1  # bump when tracking output changes meaning
OVERLAY_FORMAT = 1


@dataclass(frozen=True)
class TrackSummary:
    """What `talkface track --json` prints. Distances in pixels, angles in degrees."""

    video: str
    n_frames: int
    n_detected: int
    n_tracked: int
    fps: float
    width: int
    height: int
    duration_s: float
    mean_reprojection_px: float
    mean_reprojection_raw_px: float
    gaps: list[tuple[int, int]]
    untracked_gaps: list[tuple[int, int]]
    n_expression: int
    pose_std_deg: dict[str, float]
    finetune_ready: bool
    finetune_problem: str
    track_seconds: float
    reconstruct_seconds: float
    frames_per_second: float
    folder: str
    overlay: str | None
    cached: bool
    picture_after_sound_s: float | None = None  # the picture starts this long after the sound (None: no sound)
    version: str = field(default=__version__)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrackResult:
    """Everything `track` produced for a clip."""

    track: FaceTrack
    model: MeshFaceModel
    fit: FaceFit
    summary: TrackSummary

    def motion(self) -> Motion:
        """The clip's own motion (the reconstructed model's landmarks, not the raw track)."""
        return Motion(self.fit.expression, self.fit.pose, project_landmarks(self.model, self.fit), self.track.fps)


def save_track(folder: Path, track: FaceTrack) -> None:
    save_npz(
        folder / "track.npz",
        landmarks=track.landmarks,
        raw_landmarks=track.raw_landmarks,
        boxes=track.boxes,
        frame_info=np.array([track.fps, track.width, track.height], np.float64),
    )


def load_track(folder: Path) -> FaceTrack:
    arrays = load_npz(folder / "track.npz")
    fps, width, height = arrays["frame_info"]
    return FaceTrack(arrays["landmarks"], arrays["raw_landmarks"], arrays["boxes"], float(fps), int(width), int(height))


def save_fit(folder: Path, fit: FaceFit) -> None:
    save_npz(folder / "fit.npz", pose=fit.pose, expression=fit.expression)


def load_fit(folder: Path) -> FaceFit:
    arrays = load_npz(folder / "fit.npz")
    return FaceFit(arrays["pose"], arrays["expression"])


def track(
    video: str | Path,
    out: str | Path,
    track_config: TrackConfig = TrackConfig(),
    reconstruct_config: ReconstructConfig = ReconstructConfig(),
    overlay: bool = True,
    force: bool = False,
) -> TrackResult:
    """Track the face in a clip, reconstruct it in 3D and draw an overlay video.

    Results are cached in `out`: a rerun with the same video and settings reuses them.

    Args:
        video: the clip.
        out: work folder (created if needed).
        track_config, reconstruct_config: stage settings.
        overlay: also write `out/overlay.mp4`.
        force: ignore the cache and redo every stage.

    Returns:
        The track, the face model, its per-frame fit and a summary.

    Raises:
        InputError, NoVideoStreamError: bad video file.
        NoFaceError, MultipleFacesError: not exactly one usable face.
    """
    video, folder = Path(video), Path(out)
    # 1. check the input before any heavy work
    info = probe(video)
    require_video(info)
    folder.mkdir(parents=True, exist_ok=True)
    cache = StageCache(folder)
    video_key = make_key(file_digest(video), FPS, *clock_key(video))
    cached = True
    # 2. face tracking
    track_key = make_key(video_key, track_config, TRACK_FORMAT)
    start = time.perf_counter()
    face_track = None if force else cache.load("track", track_key, ["track.npz"], lambda: load_track(folder))
    if face_track is None:
        cached = False
        face_track = track_video(video, track_config)
        save_track(folder, face_track)
        cache.mark_done("track", track_key)
    track_seconds = time.perf_counter() - start
    # 3. 3D reconstruction + texture
    model_key = make_key(track_key, reconstruct_config)
    start = time.perf_counter()
    loaded = None if force else cache.load("model", model_key, ["model.npz", "model.json", "fit.npz"], lambda: (MeshFaceModel.load(folder), load_fit(folder)))
    if loaded is None:
        cached = False
        model, fit = reconstruct(video, face_track, reconstruct_config)
        model.save(folder)
        save_fit(folder, fit)
        cache.mark_done("model", model_key)
    else:
        model, fit = loaded
    reconstruct_seconds = time.perf_counter() - start
    projected = project_landmarks(model, fit)
    # 4. overlay video for a person to inspect
    overlay_path = None
    if overlay:
        overlay_path = folder / "overlay.mp4"
        overlay_key = make_key(model_key, OVERLAY_FORMAT)
        if force or not cache.is_done("overlay", overlay_key, ["overlay.mp4"]):
            write_overlay(video, projected, overlay_path, with_audio=info.has_audio)
            cache.mark_done("overlay", overlay_key)
    summary = _summarise(video, folder, face_track, fit, projected, model, track_seconds, reconstruct_seconds, overlay_path, cached)
    write_json(folder / "summary.json", summary.to_json())
    return TrackResult(face_track, model, fit, summary)


def reconstruct(video: Path, face_track: FaceTrack, config: ReconstructConfig) -> tuple[MeshFaceModel, FaceFit]:
    """Build the face model and fit, then bake its texture from the most frontal frames."""
    from dataclasses import replace

    model, fit = build_model(face_track, config)
    chosen = frontal_frames(fit, config.texture_frames)
    frames = read_frames_at(video, chosen.tolist(), face_track.fps)
    vertices = project_landmarks(model, FaceFit(fit.pose[chosen], fit.expression[chosen]))
    texture = bake_texture(model, dict(zip(chosen.tolist(), vertices)), frames)
    return replace(model, texture=texture), fit


def write_overlay(video: Path, projected: np.ndarray, path: Path, with_audio: bool) -> None:
    """Encode the clip with the reconstructed mesh drawn on each frame."""
    audio = load_audio(video) if with_audio else None
    n_frames = len(projected)

    def frames():
        with progress.bar("writing overlay", n_frames) as advance:
            for index, frame in enumerate(read_frames(video)):
                if index >= n_frames:
                    break
                yield draw_overlay(frame, projected[index], f"{index}")
                advance(1)

    write_video(path, frames(), FPS, audio)


def _summarise(video, folder, face_track, fit, projected, model, track_seconds, reconstruct_seconds, overlay_path, cached) -> TrackSummary:
    error = reprojection_error(face_track, projected)
    raw_error = np.linalg.norm(face_track.raw_landmarks[..., :2] - projected[..., :2], axis=-1).mean(1)
    pose_std = np.degrees(np.nanstd(fit.pose[:, :3], axis=0))
    problem = finetune_problem(face_track)
    elapsed = track_seconds + reconstruct_seconds
    return TrackSummary(
        video=str(video),
        n_frames=face_track.n_frames,
        n_detected=int(face_track.detected.sum()),
        n_tracked=int(face_track.tracked.sum()),
        fps=face_track.fps,
        width=face_track.width,
        height=face_track.height,
        duration_s=face_track.n_frames / face_track.fps,
        mean_reprojection_px=float(np.nanmean(error)),
        mean_reprojection_raw_px=float(np.nanmean(raw_error)),
        gaps=face_track.gaps,
        untracked_gaps=face_track.untracked_gaps,
        n_expression=model.n_expression,
        pose_std_deg={"pitch": float(pose_std[0]), "yaw": float(pose_std[1]), "roll": float(pose_std[2])},
        finetune_ready=problem == "",
        finetune_problem=problem,
        track_seconds=round(track_seconds, 3),
        reconstruct_seconds=round(reconstruct_seconds, 3),
        frames_per_second=round(face_track.n_frames / elapsed, 2) if elapsed > 0 else 0.0,
        folder=str(folder),
        overlay=str(overlay_path) if overlay_path else None,
        cached=cached,
        picture_after_sound_s=_rounded(probe(video).picture_after_sound),
    )


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


def require_clip_duration(seconds: float, source: str, config: FinetuneConfig = FinetuneConfig()) -> None:
    """Raise ClipTooShortError if `seconds` of clip is too little to finetune on."""
    if seconds < config.min_seconds:
        raise ClipTooShortError(
            f"{source} is {seconds:.1f} s long; finetuning needs at least {config.min_seconds:.0f} s "
            "(20-30 s is best) of one person talking"
        )


def require_finetune_clip(face_track: FaceTrack, config: FinetuneConfig = FinetuneConfig()) -> None:
    """Check that a tracked clip can be used to finetune a person.

    Raises:
        ClipTooShortError: shorter than `config.min_seconds`.
        NoFaceError: the face is tracked in too few frames.
    """
    require_clip_duration(face_track.n_frames / face_track.fps, "the clip", config)
    tracked = face_track.tracked.mean()
    if tracked < config.min_tracked_fraction:
        raise NoFaceError(
            f"a face is tracked in only {tracked:.0%} of the frames (no face in frames "
            f"{format_ranges(face_track.untracked_gaps)}); finetuning needs {config.min_tracked_fraction:.0%}: "
            "trim those parts or use a clip where the face stays in view"
        )


def finetune_problem(face_track: FaceTrack) -> str:
    """Why this clip cannot be used to finetune a person, or '' if it can."""
    try:
        require_finetune_clip(face_track)
    except (ClipTooShortError, NoFaceError) as exc:
        return str(exc)
    return ""


def track_in_profile(video: str | Path, person: str | Path, track_config: TrackConfig = TrackConfig()) -> Motion:
    """Track a new clip of an already finetuned person and fit it in that person's model.

    The result's expression coefficients are in the profile's basis, so the motion can drive
    the profile (self-reenactment, motion transfer between clips of one person).
    """
    from talkface.face.fit import fit_clip
    from talkface.profile import load_profile

    profile = load_profile(person)
    face_track = track_video(video, track_config)
    fit = fit_clip(profile.face, face_track)
    return Motion(fit.expression, fit.pose, project_landmarks(profile.face, fit), face_track.fps)
