"""`talkface finetune`: learn a person profile from a 10-30 s clip, resumably."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from talkface import progress
from talkface._version import __version__
from talkface.audio import extract, loudness_columns
from talkface.cache import StageCache, file_digest, make_key
from talkface.config import FPS, REFINER_PRESETS, FinetuneConfig, ReconstructConfig, RefinerConfig, TrackConfig
from talkface.device import resolve_device
from talkface.errors import CacheError, ClipTooShortError, InputError
from talkface.face.model import FaceFit
from talkface.face.texture import frontal_frames
from talkface.face.tracker import track_video
from talkface.media import load_audio, probe, read_frames, read_frames_at, require_audio, require_video
from talkface.media.clock import media_clock
from talkface.media.video import write_excerpt
from talkface.motion.model import train_motion_model
from talkface.motion.generic import FEATURE_SET as GENERIC_FEATURES
from talkface.motion.generic import GENERIC_PATH, GenericLipModel
from talkface.profile import Profile, ProfileInfo, SourceInfo, default_profile_dir, load_profile, publish_profile, save_profile_parts, withdraw_profile
from talkface.refine.generic import GENERIC_REFINER_PATH
from talkface.refine.generic import fits as generic_fits
from talkface.refine.model import REFINER_FORMAT, Refiner
from talkface.refine.memory import MouthMemory
from talkface.refine.train import CHECKPOINT, PairSet, prepare_pairs, train_refiner
from talkface.render.composite import SKIN_RAMP
from talkface.render.eyelids import EYELIDS_VERSION
from talkface.render.eyes import EyeMemory, RegionMemory
from talkface.render.mouth_patches import MouthPatches
from talkface.render.frames import MATTES_FORMAT, FrameStore, MatteStore, save_frames, save_mattes
from talkface.signals import best_window
from talkface.storage import load_npz, remove_stale_partials_in, save_npz
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
    refiner_config: RefinerConfig | None = None,
) -> Profile:
    """Build a person profile from a clip of them talking.

    Every stage is cached in the profile folder, so rerunning after an interruption resumes
    where it stopped; the refiner's training resumes from its last checkpoint. The profile
    becomes visible (its profile.json written) only when every stage is done.

    Args:
        video: 10-30 s of one person talking, with sound.
        out: the profile folder (default: $TALKFACE_HOME/profiles/<video name>).
        config: finetuning settings; track_config, reconstruct_config: earlier stages.
        device: 'auto', 'cpu' or 'cuda'.
        force: redo every stage.
        refiner_config: refiner settings (default: the preset named in `config`).

    Returns:
        The loaded profile.

    Raises:
        InputError (and subclasses): unreadable video, no audio, clip too short, unknown preset.
        NoFaceError, MultipleFacesError: not one usable face.
    """
    video = Path(video)
    folder = Path(out) if out else default_profile_dir(video)
    device = resolve_device(device)
    # 1. check the input before heavy work
    if config.refiner and refiner_config is None:
        if config.preset not in REFINER_PRESETS:
            raise InputError(f"unknown refiner preset {config.preset!r}; use one of {', '.join(REFINER_PRESETS)}")
        refiner_config = REFINER_PRESETS[config.preset]
    if config.use_generic and config.features != GENERIC_FEATURES:
        raise InputError(f"the generic lip model reads {GENERIC_FEATURES} features, not {config.features}; use --features {GENERIC_FEATURES} or --no-generic")
    steps = 5 if config.refiner else 4
    info = probe(video)
    require_video(info)
    require_audio(info)
    require_clip_duration(info.duration, str(video), config)
    require_overlap(video, config)
    withdraw_profile(folder)  # visible again, whole, when this run ends
    remove_stale_partials_in(folder)  # temporaries of a killed earlier run
    source_video = video
    video = _bounded_clip(video, folder, config, track_config, force)
    # 2. tracking + 3D reconstruction (cached by `track`)
    progress.log(f"[1/{steps}] tracking and reconstructing the face in {video.name}")
    started = time.perf_counter()
    tracked = track(video, folder, track_config, reconstruct_config, overlay=False, force=force)
    require_finetune_clip(tracked.track, config)
    tracked = _learnt_frames(video, tracked)
    # 3. audio features, aligned to the clip's frames
    progress.log(f"[2/{steps}] audio features ({config.features})")
    features = _clip_features(video, folder, config.features, tracked.track.n_frames, force)
    # 4. the audio->motion model
    progress.log(f"[3/{steps}] adapting the audio->motion model" + (" from the generic lip model" if config.use_generic else ""))
    generic = GenericLipModel.load(Path(config.generic_path) if config.generic_path else GENERIC_PATH) if config.use_generic else None
    motion = train_motion_model(tracked.model, tracked.fit, features, tracked.track.fps, generic, loudness_columns(config.features))
    # 5. the profile, with the clip's frames as backgrounds
    progress.log(f"[4/{steps}] writing the profile to {folder}")
    _store_clip_frames(video, folder, force)
    frontal = int(frontal_frames(tracked.fit, 1)[0])
    reference = read_frames_at(video, [frontal])[frontal]
    source = SourceInfo(
        path=str(source_video),
        sha256=file_digest(source_video),
        n_frames=tracked.track.n_frames,
        fps=float(tracked.track.fps),
        width=tracked.track.width,
        height=tracked.track.height,
        duration_s=tracked.track.n_frames / tracked.track.fps,
        reference_frame=frontal,
    )
    generic_record = {k: generic.meta.get(k) for k in ("trained", "command", "cross_validation")} if generic else None
    save_profile_parts(folder, tracked.model, tracked.fit, motion, reference)
    for region in (EyeMemory, MouthPatches):
        _store_region(region, video, folder, tracked, force, motion.blinks.deepest() if region is EyeMemory else None)
    _measure_turn_gain(folder, tracked, force)
    # 6. the GAN refiner
    refiner = None
    if config.refiner:
        progress.log(f"[5/{steps}] training the refiner (preset {config.preset})")
        refiner = _train_refiner(video, folder, tracked, refiner_config, config.preset, device, force)
    info = ProfileInfo(
        name=video.stem,
        talkface=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        source=source,
        features=config.features,
        blinks_per_minute=float(motion.blinks.per_minute),
        finetune_seconds=round(time.perf_counter() - started, 1),
        validation=motion.validation,
        generic=generic_record,
        refiner=refiner,
    )
    publish_profile(folder, info)
    return load_profile(folder)


SAMPLE_FORMAT = 2  # 2: the stretch lies where picture and sound play together


def _bounded_clip(video: Path, folder: Path, config: FinetuneConfig, track_config: TrackConfig, force: bool) -> Path:
    """The video itself, or for one whose picture and sound play together longer than
    `config.max_seconds` its best-tracked stretch of that length within that overlap (tracked
    whole first, streamed), written once into the profile folder."""
    first, stop = _overlap_frames(video)
    longest = int(round(config.max_seconds * FPS))
    if stop - first <= longest:
        return video
    cache = StageCache(folder)
    sample = folder / "sample.mp4"
    key = make_key(file_digest(video), config.max_seconds, track_config, SAMPLE_FORMAT, first, stop)
    if force or not cache.is_done("sample", key, ["sample.mp4"]):
        progress.log(f"{video.name} is {(stop - first) / FPS:.0f} s long: tracking it whole to finetune on its best-tracked {config.max_seconds:.0f} s")
        first += best_window(track_video(video, track_config).tracked[first:stop], longest)
        write_excerpt(video, first, longest, sample)
        cache.mark_done("sample", key)
    return sample


LATE_END_FRAMES = 12  # frames (0.5 s): a sound that stops at most this long before the picture does is padded with silence


def _learnt_frames(video: Path, tracked):
    """`tracked` with the frames where picture and sound do not both play (a picture that starts
    after its sound holds its first frame; a sound that starts late or stops early leaves frames
    silent) taken out of what is learnt: their fit is NaN, as for frames without a face. Nothing
    is re-encoded, so the clip's frames stay its own (a re-timed copy cost 0.02 of held-out mouth r)."""
    from dataclasses import replace

    first, stop = _overlap_frames(video)
    if stop >= tracked.track.n_frames - LATE_END_FRAMES:
        stop = tracked.track.n_frames  # the sound stops just before the picture: silence, kept
    if first == 0 and stop == tracked.track.n_frames:
        return tracked
    progress.log(f"note: {video.name}'s picture and sound play together from {first / FPS:.2f} s to {stop / FPS:.2f} s; finetuning on that stretch")
    pose, expression = tracked.fit.pose.copy(), tracked.fit.expression.copy()
    for array in (pose, expression):
        array[:first] = np.nan
        array[stop:] = np.nan
    return replace(tracked, fit=FaceFit(pose, expression))


def _overlap_frames(video: Path) -> tuple[int, int]:
    """[first, stop): the frames (on the file's clock) in which its picture and sound both play."""
    start, end = media_clock(video).overlap
    return int(np.ceil(start * FPS - 0.5)), int(np.floor(end * FPS + 0.5))


def require_overlap(video: Path, config: FinetuneConfig) -> None:
    """Raise ClipTooShortError if the picture and the sound play together for less than
    `config.min_seconds` (the sound starting late, or stopping early)."""
    start, end = media_clock(video).overlap
    if end - start < config.min_seconds:
        raise ClipTooShortError(
            f"the picture and the sound of {video} play together for only {end - start:.1f} s (from {start:.2f} s to "
            f"{end:.2f} s of the file); finetuning needs at least {config.min_seconds:.0f} s of the person talking "
            "with their sound (20-30 s is best): give a clip whose sound covers its picture"
        )


def _train_refiner(video: Path, folder: Path, tracked, refiner_config: RefinerConfig, preset: str, device: str, force: bool) -> dict:
    """Train the refiner on the clip rendered onto itself, or reuse the one already trained."""
    cache = StageCache(folder)
    fit_digest = file_digest(folder / "fit.npz")
    generic = file_digest(GENERIC_REFINER_PATH) if refiner_config.warm_start and generic_fits(refiner_config.channels) else None  # where it starts
    key = make_key(file_digest(video), fit_digest, file_digest(folder / EyeMemory.FILE), EYELIDS_VERSION, repr(refiner_config), REFINER_FORMAT, SKIN_RAMP, generic)  # the coarse frames it learns from
    if not force and cache.is_done("refiner", key, ["refiner.json", "refiner.safetensors", "refiner_memory.npz"]):
        return Refiner.load(folder).summary
    n_frames = len(tracked.fit.pose)
    n_train = int(round(n_frames * (1 - refiner_config.held_out_fraction)))
    (folder / "refiner.json").unlink(missing_ok=True)  # the old refiner no longer matches
    if force:
        (folder / CHECKPOINT).unlink(missing_ok=True)
    pairs, memory = _training_pairs(video, folder, tracked, refiner_config, n_train, device, key, force)
    summary = train_refiner(pairs, memory, n_train, refiner_config, folder, key, preset, device)
    cache.mark_done("refiner", key)
    for name in PAIR_FILES:  # only needed to resume training
        (folder / name).unlink(missing_ok=True)
    return summary


PAIR_FILES = ("refiner_pairs.npz", "refiner_pairs_memory.npz")


def _training_pairs(video: Path, folder: Path, tracked, refiner_config: RefinerConfig, n_train: int, device: str, key: str, force: bool):
    """The refiner's training pairs and mouth memory: a stage of its own, cached until training
    ends, so a run killed during training never renders them again."""
    cache = StageCache(folder)
    if not force and cache.is_done("refiner-pairs", key, list(PAIR_FILES)):
        try:
            return PairSet(**load_npz(folder / PAIR_FILES[0])), MouthMemory.load(folder / PAIR_FILES[1])
        except (CacheError, TypeError):
            pass  # damaged: render them again
    eyes = EyeMemory.load(folder / EyeMemory.FILE)  # the mouth patches are for coarse video only (render/mouth_patches.py)
    pairs, memory = prepare_pairs(tracked.model, tracked.fit, read_frames(video), refiner_config, n_train, device, (eyes,))
    save_npz(folder / PAIR_FILES[0], **{f.name: getattr(pairs, f.name) for f in fields(pairs)})
    memory.save(folder / PAIR_FILES[1])
    cache.mark_done("refiner-pairs", key)
    return pairs, MouthMemory.load(folder / PAIR_FILES[1])  # the same memory a resumed run reads


def _store_clip_frames(video: Path, folder: Path, force: bool) -> None:
    cache = StageCache(folder)
    key = make_key(file_digest(video), FRAMES_FORMAT)
    if force or not cache.is_done("frames", key, ["frames.npz"]):
        save_frames(folder / "frames.npz", read_frames(video))
        cache.mark_done("frames", key)
    _store_clip_mattes(folder, force)


def _store_clip_mattes(folder: Path, force: bool) -> None:
    """The person matte of every stored clip frame, for the head warp at speak (render/headwarp.py):
    made once here (about 20 ms a frame) instead of in every turned frame of every speak."""
    from talkface.render.headwarp import PersonMatter

    cache = StageCache(folder)
    key = make_key(file_digest(folder / "frames.npz"), MATTES_FORMAT)
    if force or not cache.is_done("mattes", key, ["mattes.npz"]):
        store = FrameStore(folder / "frames.npz", cache_size=1)
        with PersonMatter() as matter, progress.bar("person mattes", len(store)) as advance:

            def mattes():
                for index in range(len(store)):
                    yield matter(store[index])
                    advance(1)

            save_mattes(folder / "mattes.npz", mattes())
        cache.mark_done("mattes", key)
    _store_room_plate(folder, force)


def _store_room_plate(folder: Path, force: bool) -> None:
    """The room behind the person as the whole clip shows it (render/room.py), where the camera
    held still: a turned head's uncovered room is read from it at speak. About 5 s."""
    from talkface.render.room import FILE, FORMAT, build_room_plate, save_room_plate

    cache = StageCache(folder)
    key = make_key(file_digest(folder / "frames.npz"), file_digest(folder / "mattes.npz"), FORMAT)
    if force or not cache.is_done("room", key, [FILE]):
        plate, record = build_room_plate(FrameStore(folder / "frames.npz", cache_size=1), MatteStore(folder / "mattes.npz"))
        save_room_plate(folder / FILE, plate, record)
        if plate is None:
            progress.log(f"note: the camera or the room moves in this clip (frames {record['median_apart_levels']} grey levels apart); a turned head's uncovered room is filled from around it")
        cache.mark_done("room", key)


def _measure_turn_gain(folder: Path, tracked, force: bool) -> None:
    """How much of a head turn this person's turned frames show (render/turn_gain.py), so that
    `speak` asks the head warp for what the motion needs: about 5 s."""
    from talkface.render.room import FILE as ROOM_FILE
    from talkface.render.room import load_room_plate
    from talkface.render.turn_gain import CALIBRATION_FRAMES, FILE, FORMAT, measure_turn_gain, save_turn_gain

    cache = StageCache(folder)
    parts = ("frames.npz", "fit.npz", "mattes.npz", ROOM_FILE)
    key = make_key(*(file_digest(folder / name) for name in parts), FORMAT)
    if force or not cache.is_done("turn_gain", key, [FILE]):
        fit = tracked.fit
        store, mattes = FrameStore(folder / "frames.npz", cache_size=1), MatteStore(folder / "mattes.npz")
        plate = load_room_plate(folder, (tracked.track.width, tracked.track.height))
        with progress.bar("measuring turned frames", CALIBRATION_FRAMES) as advance:
            record = measure_turn_gain(tracked.model, fit.pose, fit.expression, fit.valid, store, mattes, advance, plate)
        save_turn_gain(folder, record)
        cache.mark_done("turn_gain", key)


def _store_region(region: type[RegionMemory], video: Path, folder: Path, tracked, force: bool, closing: np.ndarray | None = None) -> None:
    """The person's eyes (lids, brows) or mouth (lips, teeth) from every tracked clip frame (see
    talkface.render.eyes and talkface.render.mouth_patches); `closing`: the person's blink at its
    deepest, which the eyes' memory keeps to shut its patches as far as the drawn eyes
    (render/eyelids.py)."""
    cache = StageCache(folder)
    blink = None if closing is None else (EYELIDS_VERSION, np.asarray(closing, np.float32).tobytes().hex())
    key = make_key(file_digest(video), file_digest(folder / "fit.npz"), region.FORMAT, *(() if blink is None else blink))
    if force or not cache.is_done(region.NAME, key, [region.FILE]):
        fit = tracked.fit
        region.build(tracked.model, fit.expression, fit.pose, fit.valid, read_frames(video), closing).save(folder / region.FILE)
        cache.mark_done(region.NAME, key)


def _clip_features(video: Path, folder: Path, feature_set: str, n_frames: int, force: bool) -> np.ndarray:
    cache = StageCache(folder)
    key = make_key(file_digest(video), feature_set, n_frames, FEATURES_FORMAT)
    name = f"features_{feature_set.replace('+', '_')}.npz"
    cached = None if force else cache.load(f"features:{feature_set}", key, [name], lambda: load_npz(folder / name)["features"])
    if cached is not None:
        return cached
    features = extract(load_audio(video), feature_set, n_frames)
    save_npz(folder / name, features=features)
    cache.mark_done(f"features:{feature_set}", key)
    return features
