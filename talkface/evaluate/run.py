"""`talkface evaluate`: measure a talking video, against the real one when given, offline."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from talkface.config import FPS, ReconstructConfig
from talkface.errors import NoAudioStreamError
from talkface.evaluate import metrics
from talkface.evaluate.identity import identity_distance
from talkface.evaluate.scan import Scan, scan
from talkface.face import topology
from talkface.face.fit import build_model, fit_clip
from talkface.face.model import FaceFit
from talkface.face.tracker import FaceTrack
from talkface.media import load_audio

MAX_LAG = 15  # frames searched either way for audio-visual and reference offsets
ANGLES = ("pitch", "yaw", "roll")


@dataclass(frozen=True)
class VideoMetrics:
    """Reference-free measurements of one video (see README, 'Evaluation metrics')."""

    n_frames: int
    face_detection_rate: float
    av_offset_frames: int | None
    av_sync_peak: float | None
    blinks_per_minute: float
    pose_std_deg: dict[str, float]
    pose_range_deg: dict[str, float]
    landmark_jitter: float
    mouth_sharpness: float


@dataclass(frozen=True)
class ComparisonMetrics:
    """Generated against reference, frame by frame."""

    n_frames_compared: int
    psnr_full: float
    ssim_full: float
    psnr_face: float
    ssim_face: float
    m_lmd: float
    f_lmd: float
    mouth_opening_r: float
    pose_error_deg: dict[str, float]
    pose_r: dict[str, float]
    identity_distance: float | None
    time_offset_frames: int
    time_offset_peak: float
    generated_resized: bool


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate` measured."""

    generated: VideoMetrics
    reference: VideoMetrics | None
    comparison: ComparisonMetrics | None
    report: str | None = None

    def to_json(self) -> dict:
        return _finite(asdict(self))


def _finite(value):
    """JSON has no NaN: turn NaN into None, recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(generated: str | Path, reference: str | Path | None = None, report: str | Path | None = None) -> Evaluation:
    """Measure a talking-face video, and compare it with the real one if given.

    Args:
        generated: the video to judge.
        reference: the real video of the same person and length (optional).
        report: folder for a contact sheet and a plot (optional).

    Returns:
        The measurements.

    Raises:
        InputError: unreadable files or lengths that differ. NoFaceError: no face in a video.
        DependencyError: dlib or its models missing (identity needs them).
    """
    generated, reference = Path(generated), Path(reference) if reference else None
    # 1. one pass over the frames: tracking and per-frame image metrics
    result = scan(generated, reference)
    # 2. head poses from one face model, so both videos are measured in the same frame
    model_track = result.reference if result.reference is not None else result.generated
    n_valid = int(model_track.tracked.sum())
    model, _ = build_model(model_track, ReconstructConfig(n_expression=max(1, min(32, n_valid // 2)), texture_size=8))
    fits = {"generated": fit_clip(model, result.generated)}
    # 3. reference-free metrics of each video, then the comparison
    video = {"generated": _video_metrics(generated, result.generated, fits["generated"], result.mouth_sharpness["generated"])}
    comparison = None
    if reference is not None:
        fits["reference"] = fit_clip(model, result.reference)
        video["reference"] = _video_metrics(reference, result.reference, fits["reference"], result.mouth_sharpness["reference"])
        comparison = _compare(result, fits)
    # 4. pictures for a person to look at
    report_path = None
    if report is not None:
        from talkface.evaluate.report import write_report

        report_path = str(write_report(Path(report), result, fits))
    return Evaluation(video["generated"], video.get("reference"), comparison, report_path)


def _pose_degrees(fit: FaceFit) -> np.ndarray:
    return np.degrees(fit.pose[:, :3].astype(np.float64))


def _video_metrics(path: Path, track: FaceTrack, fit: FaceFit, sharpness: np.ndarray) -> VideoMetrics:
    openness = topology.mouth_openness(track.raw_landmarks)
    offset, peak = None, None
    info_audio = _audio_envelope(path, track.n_frames)
    if info_audio is not None:
        offset, peak = metrics.best_lag(info_audio, openness, MAX_LAG)
    angles = _pose_degrees(fit)
    blinks = metrics.blink_frames(metrics.eye_openness(track.raw_landmarks))
    minutes = track.n_frames / FPS / 60
    return VideoMetrics(
        n_frames=track.n_frames,
        face_detection_rate=float(track.detected.mean()),
        av_offset_frames=offset,
        av_sync_peak=peak,
        blinks_per_minute=len(blinks) / minutes if minutes > 0 else 0.0,
        pose_std_deg={a: float(np.nanstd(angles[:, i])) for i, a in enumerate(ANGLES)},
        pose_range_deg={a: float(np.nanpercentile(angles[:, i], 95) - np.nanpercentile(angles[:, i], 5)) for i, a in enumerate(ANGLES)},
        landmark_jitter=metrics.landmark_jitter(track.raw_landmarks),
        mouth_sharpness=float(np.nanmean(sharpness)),
    )


def _audio_envelope(path: Path, n_frames: int) -> np.ndarray | None:
    try:
        audio = load_audio(path)
    except NoAudioStreamError:
        return None
    return metrics.speech_envelope(audio.samples, audio.sample_rate, FPS, n_frames)


def _compare(result: Scan, fits: dict[str, FaceFit]) -> ComparisonMetrics:
    generated, reference = result.generated.raw_landmarks, result.reference.raw_landmarks
    open_g, open_r = topology.mouth_openness(generated), topology.mouth_openness(reference)
    angles_g, angles_r = _pose_degrees(fits["generated"]), _pose_degrees(fits["reference"])
    offset, peak = metrics.best_lag(open_r, open_g, MAX_LAG)
    embeddings = result.embeddings
    identity = (
        identity_distance(embeddings["generated"], embeddings["reference"])
        if embeddings["generated"] and embeddings["reference"]
        else None
    )
    return ComparisonMetrics(
        n_frames_compared=len(result.psnr_full),
        psnr_full=float(np.nanmean(result.psnr_full)),
        ssim_full=float(np.nanmean(result.ssim_full)),
        psnr_face=float(np.nanmean(result.psnr_face)),
        ssim_face=float(np.nanmean(result.ssim_face)),
        m_lmd=metrics.landmark_distance(generated, reference, topology.lip_indices()),
        f_lmd=metrics.landmark_distance(generated, reference),
        mouth_opening_r=metrics.pearson(open_g, open_r),
        pose_error_deg={a: float(np.nanmean(np.abs(angles_g[:, i] - angles_r[:, i]))) for i, a in enumerate(ANGLES)},
        pose_r={a: metrics.pearson(angles_g[:, i], angles_r[:, i]) for i, a in enumerate(ANGLES)},
        identity_distance=identity,
        time_offset_frames=offset,
        time_offset_peak=peak,
        generated_resized=result.resized,
    )
