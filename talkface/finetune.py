"""`talkface finetune`: learn a person profile from a 10-30 s clip, resumably."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from talkface import __version__, progress
from talkface.audio import extract
from talkface.cache import StageCache, file_digest, make_key
from talkface.config import FinetuneConfig, ReconstructConfig, TrackConfig
from talkface.device import resolve_device
from talkface.face.texture import frontal_frames
from talkface.media import load_audio, probe, read_frames, read_frames_at, require_audio, require_video
from talkface.motion.model import train_motion_model
from talkface.motion.prior import MotionPrior, prior_path
from talkface.profile import Profile, default_profile_dir, load_profile, save_profile
from talkface.render.frames import save_frames
from talkface.storage import load_npz, save_npz
from talkface.track import require_clip_duration, require_finetune_clip, track

FEATURES_FORMAT = 1
FRAMES_FORMAT = 1


def finetune(
    video: str | Path,
    out: str | Path | None = None,
    config: FinetuneConfig = FinetuneConfig(),
    track_config: TrackConfig = TrackConfig(),
    reconstruct_config: ReconstructConfig = ReconstructConfig(),
    device: str = "auto",
    force: bool = False,
) -> Profile:
    """Build a person profile from a clip of them talking.

    Every stage is cached in the profile folder, so rerunning after an interruption resumes
    where it stopped.

    Args:
        video: 10-30 s of one person talking, with sound.
        out: the profile folder (default: $TALKFACE_HOME/profiles/<video name>).
        config: finetuning settings; track_config, reconstruct_config: earlier stages.
        device: 'auto', 'cpu' or 'cuda'.
        force: redo every stage.

    Returns:
        The loaded profile.

    Raises:
        InputError (and subclasses): unreadable video, no audio, clip too short.
        NoFaceError, MultipleFacesError: not one usable face.
    """
    video = Path(video)
    folder = Path(out) if out else default_profile_dir(video)
    device = resolve_device(device)
    # 1. check the input before heavy work
    info = probe(video)
    require_video(info)
    require_audio(info)
    require_clip_duration(info.duration, str(video), config)
    # 2. tracking + 3D reconstruction (cached by `track`)
    progress.log(f"[1/4] tracking and reconstructing the face in {video.name}")
    started = time.perf_counter()
    tracked = track(video, folder, track_config, reconstruct_config, overlay=False, force=force)
    require_finetune_clip(tracked.track, config)
    # 3. audio features, aligned to the clip's frames
    progress.log(f"[2/4] audio features ({config.features})")
    features = _clip_features(video, folder, config.features, tracked.track.n_frames, device, force)
    # 4. the audio->motion model
    progress.log("[3/4] training the audio->motion model" + (" from the generic prior" if config.use_prior else ""))
    prior = MotionPrior.load(prior_path(config.features)) if config.use_prior else None
    motion = train_motion_model(tracked.model, tracked.fit, features, tracked.track.fps, prior)
    # 5. the profile, with the clip's frames as backgrounds
    progress.log(f"[4/4] writing the profile to {folder}")
    _store_clip_frames(video, folder, force)
    frontal = int(frontal_frames(tracked.fit, 1)[0])
    reference = read_frames_at(video, [frontal])[frontal]
    summary = {
        "name": video.stem,
        "talkface": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "source": {
            "path": str(video),
            "sha256": file_digest(video),
            "n_frames": tracked.track.n_frames,
            "fps": tracked.track.fps,
            "width": tracked.track.width,
            "height": tracked.track.height,
            "duration_s": tracked.track.n_frames / tracked.track.fps,
            "reference_frame": frontal,
        },
        "features": config.features,
        "prior": prior.meta if prior else None,
        "blinks_per_minute": motion.blinks.per_minute,
        "finetune_seconds": round(time.perf_counter() - started, 1),
    }
    save_profile(folder, summary, tracked.model, tracked.fit, motion, reference)
    return load_profile(folder)


def _store_clip_frames(video: Path, folder: Path, force: bool) -> None:
    cache = StageCache(folder)
    key = make_key(file_digest(video), FRAMES_FORMAT)
    if force or not cache.is_done("frames", key, ["frames.npz"]):
        save_frames(folder / "frames.npz", read_frames(video))
        cache.mark_done("frames", key)


def _clip_features(video: Path, folder: Path, feature_set: str, n_frames: int, device: str, force: bool) -> np.ndarray:
    cache = StageCache(folder)
    key = make_key(file_digest(video), feature_set, n_frames, FEATURES_FORMAT)
    name = f"features_{feature_set.replace('+', '_')}.npz"
    cached = None if force else cache.load(f"features:{feature_set}", key, [name], lambda: load_npz(folder / name)["features"])
    if cached is not None:
        return cached
    features = extract(load_audio(video), feature_set, n_frames, device)
    save_npz(folder / name, features=features)
    cache.mark_done(f"features:{feature_set}", key)
    return features
