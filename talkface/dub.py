"""`talkface dub`: lip-sync existing footage to new audio, keeping everything else of the video.

Each output frame is a frame of the video. Where the profile's person is tracked, only the lower
face is redrawn: the mesh takes that frame's head pose, eyes and brows from the video and its lips
and jaw from the audio-driven motion, is rendered (the frame's own skin kept away from the mouth,
moved through the mesh), refined, and blended back under a soft mask that follows the jaw; every
pixel outside the mask is the input's. Frames without the person
(cutaways, another face, no face) pass through untouched.

Stages, each cached so a rerun resumes:
1. footage: every frame tracked (shot by shot: no gap filled and no motion smoothed across a
   cut), scene cuts, and face embeddings sampled per shot; in $TALKFACE_HOME/dubs/<video hash>;
2. the person: `--person`, or a profile finetuned on the video itself (its best-tracked
   `sample_seconds` when longer), cached by the video's content;
3. the new mouth motion from the audio;
4. the output, encoded in segments (resumed segment by segment), joined and muxed with the audio.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from talkface import progress
from talkface._version import __version__
from talkface.audio import check_speech, extract, n_video_frames
from talkface.cache import StageCache, file_digest, make_key
from talkface.config import FPS, DubConfig, FinetuneConfig, TrackConfig
from talkface.controls import lower_face_ramp, mouth_scaling
from talkface.device import resolve_device
from talkface.errors import ClipTooShortError, DependencyError, InputError, NoFaceError
from talkface.face.fit import fit_clip
from talkface.face.model import FaceFit, apply_pose
from talkface.face.topology import N_LANDMARKS
from talkface.face.tracker import FaceMeshTracker, FaceTrack, TrackBuilder, face_box
from talkface.media import check_destination, load_audio, probe, require_video, write_video
from talkface.media.destination import is_stdout
from talkface.media.clock import clock_key
from talkface.media.video import FrameSource, concat_videos, read_frames, write_excerpt
from talkface.pipeline import pipeline_threads, prefetched
from talkface.profile import Profile, load_profile, talkface_home
from talkface.signals import best_window
from talkface.storage import load_npz, remove_stale_partials_in, save_npz, write_json

FOOTAGE_FORMAT = 2  # 2: up to two faces per frame, each followed in its own slot
CUT_THRESHOLD = 27.0  # mean HSV change (0-255) between consecutive thumbnails that is always a cut
CUT_FLOOR = 8.0  # a smaller change is never a cut (within a shot: 0.3-3.5 on talking footage)
CUT_RATIO = 4.0  # between the two, a cut is a change this many times the shot's recent median
MIN_SHOT_FRAMES = 5  # a change sooner than this after a cut is a flash, not a shot
EMBEDDING_EVERY = 25  # frames between identity samples within a shot
SLOTS = 2  # faces followed per frame (the tracker finds at most two)
NEW_FACE_COST = 1.0  # face widths: a face farther than this from a slot's last place starts a free slot
SAME_PERSON = 0.6  # dlib's distance for "same person"
MUX_RATE = 48000  # Hz of the audio muxed into the output (features use 16 kHz)
# x264 preset of the dub's segments: most of each frame is the footage re-encoded, where "medium" (speak's)
# gained 0.3 dB over "veryfast" but cost a fifth of the speed at 1280x720 (24 against 31 frames/s, refined)
DUB_X264_PRESET = "veryfast"


@dataclass(frozen=True)
class Footage:
    """Every frame of a video, tracked: up to two faces, shots and identity samples.

    Each face is followed in its own slot: within a shot, slot k is one face from frame to frame
    (matched by where it was last), whichever of the two is larger.

    Attributes:
        tracks: one face track per slot (landmarks smoothed within shots; NaN where no face).
        cuts: (T,) bool, True at the first frame of each shot (frame 0 included).
        embedding_frames: (E,) frame indices of the identity samples.
        embedding_slots: (E,) the slot each sample is of.
        embeddings: (E, 128) dlib embeddings of those faces.
    """

    tracks: tuple[FaceTrack, ...]
    cuts: np.ndarray
    embedding_frames: np.ndarray
    embedding_slots: np.ndarray
    embeddings: np.ndarray

    @property
    def n_frames(self) -> int:
        return self.tracks[0].n_frames

    @property
    def shots(self) -> list[tuple[int, int]]:
        """[first, stop) frame ranges of the shots."""
        starts = [*np.flatnonzero(self.cuts)]
        return list(zip(starts, [*starts[1:], self.n_frames]))

    @property
    def main_slots(self) -> list[int]:
        """Per shot, the slot whose face is largest over the shot."""
        choice = []
        for first, stop in self.shots:
            areas = [np.nansum((t.boxes[first:stop, 2] - t.boxes[first:stop, 0]) * (t.boxes[first:stop, 3] - t.boxes[first:stop, 1])) for t in self.tracks]
            choice.append(int(np.argmax(areas)))
        return choice

    @property
    def track(self) -> FaceTrack:
        """The main face: in each shot, the one largest over the shot."""
        return self.combined(self.main_slots)

    def combined(self, choice: list[int | None]) -> FaceTrack:
        """One track from slot choice[k] in shot k (None: no face in that shot)."""
        first_track = self.tracks[0]
        landmarks = np.full_like(first_track.landmarks, np.nan)
        raw = np.full_like(first_track.raw_landmarks, np.nan)
        boxes = np.full_like(first_track.boxes, np.nan)
        for (first, stop), slot in zip(self.shots, choice):
            if slot is not None:
                chosen = self.tracks[slot]
                landmarks[first:stop], raw[first:stop], boxes[first:stop] = chosen.landmarks[first:stop], chosen.raw_landmarks[first:stop], chosen.boxes[first:stop]
        return FaceTrack(landmarks, raw, boxes, first_track.fps, first_track.width, first_track.height)


@dataclass(frozen=True)
class DubResult:
    video: Path
    profile: Path
    n_frames: int
    dubbed_frames: int
    shots: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.n_frames / max(self.seconds, 1e-9)


def dub(
    video: str | Path,
    audio: str | Path,
    out: str | Path,
    person: str | Path | Profile | None = None,
    config: DubConfig = DubConfig(),
    device: str = "auto",
    finetune_config: FinetuneConfig | None = None,
    track_config: TrackConfig = TrackConfig(),
) -> DubResult:
    """Make `video` say `audio`: its own frames, with the lower face redrawn to the new speech.

    Args:
        video: footage of the person (any length; cuts, cutaways and other people are fine).
        audio: the new speech. The output lasts as long as it does (see `config.fit`).
        out: the .mp4 to write.
        person: a profile of the person; None builds one from the video (cached by its content).
        config: fit mode, mouth amplitude, refiner, quality (see DubConfig).
        device: 'auto', 'cpu' or 'cuda'.
        finetune_config: settings of the profile built from the video (default: DubConfig.preset).
        track_config: face tracking settings.

    Raises:
        InputError (and subclasses): unreadable or silent inputs, bad settings, an output that
            cannot be written; NoFaceError: no face anywhere in the video.
    """
    started = time.perf_counter()
    config.check()
    video, out = Path(video), Path(out)
    if is_stdout(out):
        raise InputError("dub writes its output in resumable segments and cannot stream it to stdout; give --out a file name")
    check_destination(out, (video, audio))
    require_video(probe(video))
    speech = load_audio(audio)
    check_speech(speech, str(audio))
    given = None if person is None else person if isinstance(person, Profile) else load_profile(person)
    if given is not None and given.is_photo:
        raise InputError(
            f"{given.folder} is a photo profile: its face texture and light come from one photo and do not blend into "
            "footage; dub without --person (a profile is built from the video itself), or with a profile finetuned on a clip"
        )
    device = resolve_device(device)
    video_digest = file_digest(video)
    work = talkface_home() / "dubs" / video_digest[:16]
    remove_stale_partials_in(work)
    # 1. every frame of the footage
    progress.log(f"[1/4] tracking every frame of {video.name}")
    footage = load_footage(video, work, track_config, video_digest)
    # 2. the person
    if person is None:
        progress.log("[2/4] the person: a profile from the video itself")
        profile = profile_from_footage(video, footage, config, finetune_config, device, video_digest)
    else:
        progress.log("[2/4] the person")
        profile = given
    if config.refine and not profile.has_refiner:
        progress.log("note: this profile has no refiner; writing the coarse render of the lower face")
    # 3. the new mouth, from the audio
    progress.log("[3/4] the new mouth motion from the audio")
    n_out = n_video_frames(speech, FPS)
    features = extract(speech, profile.feature_set, n_out)
    mouth = profile.motion.predict_expression(features)
    if config.mouth_scale != 1.0:
        mouth = mouth @ mouth_scaling(profile.face, config.mouth_scale, profile.clip_fit.expression).T
    track, person_frames = person_track(footage, profile)
    fit = fit_clip(profile.face, track)
    sources, jumps = source_frames(footage.n_frames, n_out, config.fit, footage.cuts)
    dubbed = person_frames[sources]
    # 4. render in segments, join, mux
    progress.log(f"[4/4] dubbing {n_out} frames ({dubbed.sum()} with the person's face redrawn)")
    key = make_key(video_digest, file_digest(Path(audio)), _profile_digest(profile), config, __version__)
    renderer = _LowerFaceRenderer(profile, fit, mouth, sources, jumps, dubbed, config.refine, device)
    segments = _render_segments(video, work / "segments" / key, n_out, config, renderer)
    concat_videos(segments, out, load_audio(audio, MUX_RATE))
    shutil.rmtree(segments[0].parent, ignore_errors=True)
    return DubResult(out, profile.folder, n_out, int(dubbed.sum()), len(footage.shots), time.perf_counter() - started)


# -- 1. footage -------------------------------------------------------------------------------
def load_footage(video: Path, work: Path, track_config: TrackConfig, digest: str | None = None) -> Footage:
    """Track every frame of `video` (cached in `work` by the video's content and the settings)."""
    cache = StageCache(work)
    key = make_key(digest or file_digest(video), track_config, FOOTAGE_FORMAT, *clock_key(video))
    arrays = cache.load("footage", key, ["footage.npz"], lambda: load_npz(work / "footage.npz"))
    if arrays is None:
        arrays = _track_footage(video, track_config)
        save_npz(work / "footage.npz", **arrays)
        cache.mark_done("footage", key)
    tracks = tuple(
        FaceTrack(arrays["landmarks"][k], arrays["raw_landmarks"][k], arrays["boxes"][k], float(arrays["fps"]), int(arrays["width"]), int(arrays["height"]))
        for k in range(len(arrays["landmarks"]))
    )
    return Footage(tracks, arrays["cuts"].astype(bool), arrays["embedding_frames"], arrays["embedding_slots"], arrays["embeddings"])


def _track_footage(video: Path, track_config: TrackConfig) -> dict[str, np.ndarray]:
    from talkface.evaluate.identity import face_embedding

    info = probe(video)
    builders = [TrackBuilder(track_config) for _ in range(SLOTS)]
    cuts, sample_frames, sample_slots, embeddings = [], [], [], []
    previous_thumb, shot_start, recent = None, 0, []
    places: list[np.ndarray | None] = [None] * SLOTS  # (centre x, centre y, width) of each slot's face when last seen
    can_embed = True
    tracker = FaceMeshTracker(track_config).__enter__()
    try:
        with progress.bar("tracking faces and shots", int(info.duration * FPS)) as advance:
            for index, frame in enumerate(read_frames(video, FPS)):
                thumb = cv2.cvtColor(cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV).astype(np.float32)
                change = float(np.abs(thumb - previous_thumb).mean()) if previous_thumb is not None else np.inf
                cut = index == 0 or (is_cut(change, recent) and index - shot_start >= MIN_SHOT_FRAMES)
                recent = [] if cut else [*recent[-11:], change]
                if cut and index > 0:  # a new shot: a fresh tracker, so no face is carried over the cut
                    tracker.__exit__(None, None, None)
                    tracker = FaceMeshTracker(track_config).__enter__()
                if cut:
                    shot_start, places = index, [None] * SLOTS
                cuts.append(cut)
                previous_thumb = thumb
                slotted = assign_slots(tracker.process(frame)[:SLOTS], places)
                for slot, builder in enumerate(builders):
                    face = slotted[slot]
                    builder.add([] if face is None else [face])
                    if face is None:
                        continue
                    places[slot] = _place(face)
                    if can_embed and (index - shot_start) % EMBEDDING_EVERY == 0:
                        try:
                            embeddings.append(face_embedding(frame, face))
                            sample_frames.append(index)
                            sample_slots.append(slot)
                        except DependencyError:
                            can_embed = False
                advance(1)
    finally:
        tracker.__exit__(None, None, None)
    cuts_array = np.array(cuts, bool)
    tracks = []
    for builder in builders:
        try:
            tracks.append(builder.finish(video, FPS, info.width, info.height, single_face=False, cuts=cuts_array))
        except NoFaceError:
            tracks.append(None)
    if all(track is None for track in tracks):
        raise NoFaceError(f"no face found in any of the {len(cuts)} frames of {video}; dubbing needs the person's face in the video")
    empty = np.full((len(cuts), N_LANDMARKS, 3), np.nan, np.float32)
    return {
        "landmarks": np.stack([empty if t is None else t.landmarks for t in tracks]),
        "raw_landmarks": np.stack([empty if t is None else t.raw_landmarks for t in tracks]),
        "boxes": np.stack([np.full((len(cuts), 4), np.nan, np.float32) if t is None else t.boxes for t in tracks]),
        "fps": np.float32(FPS), "width": np.int32(info.width), "height": np.int32(info.height), "cuts": cuts_array,
        "embedding_frames": np.array(sample_frames, np.int64), "embedding_slots": np.array(sample_slots, np.int64),
        "embeddings": np.array(embeddings, np.float64).reshape(-1, 128),
    }


def assign_slots(faces: list[np.ndarray], places: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """Put each of a frame's faces (at most len(places)) in a slot: the assignment that moves the
    faces least from where their slots last saw a face, in face widths; a free slot costs
    NEW_FACE_COST. Returns each slot's face or None."""
    best, best_cost = None, np.inf
    for order in itertools.permutations(range(len(places)), len(faces)):
        cost = 0.0
        for face, slot in zip(faces, order):
            place = places[slot]
            if place is None:
                cost += NEW_FACE_COST
            else:
                here = _place(face)
                cost += float(np.hypot(*(here[:2] - place[:2])) / max(place[2], 1.0))
        if cost < best_cost:
            best, best_cost = order, cost
    slotted: list[np.ndarray | None] = [None] * len(places)
    for face, slot in zip(faces, best or ()):
        slotted[slot] = face
    return slotted


def _place(face: np.ndarray) -> np.ndarray:
    """(centre x, centre y, width) of a face's landmarks."""
    box = face_box(face)
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0]])


def is_cut(change: float, recent: list[float]) -> bool:
    """A new shot starts: a large change between thumbnails, or one well above the shot's recent
    changes (letterboxed or dark footage changes less in all, but still many times its usual)."""
    if change > CUT_THRESHOLD:
        return True
    return change > CUT_FLOOR and change > CUT_RATIO * max(float(np.median(recent)) if recent else 0.0, 0.5)


# -- 2. the person ----------------------------------------------------------------------------
def prepare_person(
    video: str | Path, preset: str = DubConfig.preset, device: str = "auto", finetune_config: FinetuneConfig | None = None,
    track_config: TrackConfig = TrackConfig(),
) -> Path:
    """Track `video` and build (or reuse) the profile `dub` makes from it; its folder."""
    video = Path(video)
    require_video(probe(video))
    digest = file_digest(video)
    footage = load_footage(video, talkface_home() / "dubs" / digest[:16], track_config, digest)
    config = DubConfig(preset=preset).check()
    return profile_from_footage(video, footage, config, finetune_config, resolve_device(device), digest).folder


def profile_from_footage(
    video: Path, footage: Footage, config: DubConfig, finetune_config: FinetuneConfig | None, device: str, digest: str
) -> Profile:
    """A profile finetuned on the video (its best-tracked stretch when long), reused by later dubs."""
    from talkface.finetune import finetune

    finetune_config = finetune_config or FinetuneConfig(preset=config.preset)
    folder = talkface_home() / "profiles" / f"{video.stem}-{digest[:8]}"
    n_sample = int(round(config.sample_seconds * FPS))
    long = footage.n_frames > 1.5 * n_sample
    first = best_stretch(footage, n_sample) if long else 0
    record = {"video_sha256": digest, "first_frame": first, "frames": n_sample if long else footage.n_frames}
    source_record = folder / "dub_source.json"
    earlier = json.loads(source_record.read_text()) if source_record.exists() else None
    if (folder / "profile.json").exists() and earlier == record:
        return load_profile(folder)
    clip = video
    if long:
        clip = folder / "sample.mp4"
        if not clip.exists() or earlier != record:
            progress.log(f"training the person on {n_sample / FPS:.0f} s of the video from {first / FPS:.1f} s (its best-tracked stretch)")
            write_excerpt(video, first, n_sample, clip)
    try:
        profile = finetune(clip, folder, finetune_config, device=device)
    except ClipTooShortError as error:
        raise ClipTooShortError(f"{error}; or dub with a profile of the person: --person PROFILE") from None
    write_json(source_record, record)
    return profile


def best_stretch(footage: Footage, length: int) -> int:
    """First frame of the `length`-frame stretch with the most tracked frames and fewest cuts."""
    return best_window(footage.track.tracked, length, footage.cuts)


def person_track(footage: Footage, profile: Profile) -> tuple[FaceTrack, np.ndarray]:
    """The profile's person through the footage, judged shot by shot by identity: their face's
    track, and (T,) bool, the frames in which it is tracked (the frames to dub).

    In each shot the face slot nearest the person (median embedding distance within dlib's
    same-person distance) is theirs; a shot where neither face is them is not dubbed. Without
    identity samples (no dlib, or none in a shot) the shot's main face is taken.
    """
    main_slots = footage.main_slots
    main = footage.combined(main_slots)
    reference = _reference_embedding(profile)
    if reference is None or not len(footage.embeddings):
        return main, main.tracked.copy()
    distance = np.linalg.norm(footage.embeddings - reference, axis=1)
    choice = []
    for (first, stop), main_slot in zip(footage.shots, main_slots):
        inside = (footage.embedding_frames >= first) & (footage.embedding_frames < stop)
        if not inside.any():
            choice.append(main_slot)
            continue
        medians = {int(k): float(np.median(distance[inside & (footage.embedding_slots == k)])) for k in np.unique(footage.embedding_slots[inside])}
        slot = min(medians, key=medians.get)
        choice.append(slot if medians[slot] <= SAME_PERSON else None)
    track = footage.combined(choice)
    return track, track.tracked.copy()


def _reference_embedding(profile: Profile) -> np.ndarray | None:
    from talkface.evaluate.identity import face_embedding

    with FaceMeshTracker() as tracker:
        faces = tracker.process(profile.reference_frame)
    if not faces:
        return None
    try:
        return face_embedding(profile.reference_frame, faces[0])
    except DependencyError:
        return None


def _profile_digest(profile: Profile) -> str:
    digest = hashlib.sha256()
    for name in ("profile.json", "refiner.json", "motion.npz", "model.npz"):
        path = profile.folder / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:20]


# -- 3. which frame of the video each output frame shows ---------------------------------------
def source_frames(n_video: int, n_out: int, fit: str, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_out,) video frame per output frame, and (n_out,) bool: a new shot starts there
    (a cut of the video, or a jump of the fit), so nothing carries over from the frame before."""
    index = np.arange(n_out)
    if fit == "hold" or n_video == 1:
        sources = np.minimum(index, n_video - 1)
    elif fit == "loop":
        sources = index % n_video
    else:  # pingpong: 0 .. n-1, n-2 .. 1, 0 .. n-1, ...
        period = 2 * (n_video - 1)
        phase = index % period
        sources = np.where(phase < n_video, phase, period - phase)
    jumps = np.zeros(n_out, bool)
    jumps[0] = True
    step = np.diff(sources)
    jumps[1:] = (np.abs(step) > 1) | cuts[sources[1:]] & (step > 0) | cuts[sources[:-1]] & (step < 0)
    return sources.astype(np.int64), jumps


# -- 4. rendering -----------------------------------------------------------------------------
class _LowerFaceRenderer:
    """Output frame i: video frame sources[i], its lower face redrawn with mouth[i]."""

    def __init__(self, profile: Profile, fit: FaceFit, mouth: np.ndarray, sources, jumps, dubbed, refine: bool, device: str):
        from talkface.render.composite import FaceCompositor
        from talkface.render.mouth_patches import MouthPatches

        self.profile, self.fit, self.mouth = profile, fit, mouth
        self.sources, self.jumps, self.dubbed = sources, jumps, dubbed
        self.ramp = lower_face_ramp(profile.face)
        self.lower = np.flatnonzero(self.ramp > 0.02)
        # only the lower face is drawn: the triangles that reach below the nose tip (half the pixels)
        lower_triangles = profile.face.triangles[(self.ramp[profile.face.triangles] > 0).any(axis=1)]
        self.compositor = FaceCompositor(replace(profile.face, triangles=lower_triangles), device)
        self.refiner = None
        if refine and profile.has_refiner:
            from talkface.refine.model import Refiner

            self.refiner = profile.read_part(lambda: Refiner.load(profile.folder, device))
        # without a refiner, the person's own lips and teeth for the new mouth shapes, as speak draws them
        self.patches = None if self.refiner else MouthPatches.from_profile(profile.folder)
        self.patch_picks = None
        if self.patches is not None:
            self.patch_picks = self.patches.select(self.patches.keys_for(profile.face, mouth, fit.pose[np.asarray(sources, np.int64)]))

    def frames(self, source: FrameSource, start: int, stop: int):
        """Output frames [start, stop). The coarse lower faces are drawn (and, with a refiner,
        their crops prepared) in a second thread while this one refines and blends the batch
        before (with the encoder's thread, three stages overlap, as in speak)."""
        from talkface.refine.model import BATCH

        stream = prefetched(self._coarse(source, start, stop), depth=2 * BATCH)
        try:
            drawn = self._drawn(stream)
            images = ((image, blend) for image, _, blend in drawn) if self.refiner is None else self.refiner.refine_stream(drawn)
            for image, blend in images:
                yield image if blend is None else _blend(blend[0], image, blend[1])
        finally:
            stream.close()

    @staticmethod
    def _drawn(stream):
        """(image, prepared refiner input, (frame, mask) to blend it into): the coarse lower face,
        or the frame itself (nothing prepared, nothing to blend) where it is not the person's face."""
        for frame, drawn in stream:
            if drawn is None:
                yield frame, None, None
                continue
            coarse, prepared, mask = drawn
            yield coarse, prepared, (frame, mask)

    def _coarse(self, source: FrameSource, start: int, stop: int):
        """(frame, None) for a frame passed on as it is; else (frame, (coarse, prepared refiner
        input or None, mask)). The lower face keeps the frame's own skin away from the mouth,
        moved through the mesh to the new mouth (as speak keeps its backgrounds'), which the
        refiner then leaves alone."""
        previous = None  # the coarse frame before, which the refiner sees too (none after a cut or jump)
        for i in range(start, stop):
            s = int(self.sources[i])
            frame = source[s]
            if not self.dubbed[i]:
                previous = None
                yield frame, None
                continue
            own, new = self.profile.face.vertices(np.stack([self.fit.expression[s], self.mouth[i]]).astype(np.float64))
            shape = own + self.ramp[:, None] * (new - own)
            pose = self.fit.pose[s][None].astype(np.float64)
            placed, placed_own = apply_pose(np.stack([shape, own]), np.repeat(pose, 2, axis=0))
            coarse, coverage, kept = self.compositor.composite_keeping(frame, placed, placed_own)
            if self.patch_picks is not None:
                coarse = self.patches.paste(coarse, placed[self.profile.face.landmark_index], self.patch_picks[i], coverage)
            prepared = None
            if self.refiner is not None:
                before = coarse if previous is None or self.jumps[i] else previous
                prepared = self.refiner.prepare(self.profile.face, coarse, before, coverage, placed, self.mouth[i], kept)
            previous = coarse
            yield frame, (coarse, prepared, self._mask(frame.shape, placed, placed_own))

    def _mask(self, shape: tuple, placed: np.ndarray, placed_own: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """The soft lower-face mask (covering the old and the new jaw), as (box, weights in the box)."""
        points = np.concatenate([placed[self.lower, :2], placed_own[self.lower, :2]])
        x0, y0 = np.floor(points.min(0)).astype(int)
        x1, y1 = np.ceil(points.max(0)).astype(int)
        height = max(y1 - y0, 8)
        sigma = max(0.06 * height, 1.5)
        pad = int(3 * sigma) + 2
        box = (max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, shape[1]), min(y1 + pad, shape[0]))
        mask = np.zeros((box[3] - box[1], box[2] - box[0]), np.float32)
        if mask.size == 0:
            return box, mask
        for vertices in (placed, placed_own):
            hull = cv2.convexHull((vertices[self.lower, :2] - [box[0], box[1]]).astype(np.float32)).astype(np.int32)
            cv2.fillConvexPoly(mask, hull, 1.0)
        inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(sigma) + 1,) * 2))
        return box, cv2.GaussianBlur(inner, (0, 0), sigma)


def _blend(frame: np.ndarray, redrawn: np.ndarray, mask: tuple) -> np.ndarray:
    """The input frame with `redrawn` under the mask; every pixel outside it is the input's."""
    (x0, y0, x1, y1), weights = mask
    out = frame.copy()
    if weights.size:
        w = weights[..., None]
        region = frame[y0:y1, x0:x1].astype(np.float32) * (1 - w) + redrawn[y0:y1, x0:x1].astype(np.float32) * w
        out[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
    return out


def _render_segments(video: Path, folder: Path, n_out: int, config: DubConfig, renderer: _LowerFaceRenderer) -> list[Path]:
    """Encode the output in segments into `folder` (one per set of inputs and settings);
    finished ones are kept until the dub is done, so a rerun resumes."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_partials_in(folder)
    bounds = [(a, min(a + config.segment_frames, n_out)) for a in range(0, n_out, config.segment_frames)]
    segments = [folder / f"{n:05d}.mp4" for n in range(len(bounds))]
    done = sum(path.exists() for path in segments)
    if done:
        progress.log(f"resuming: {done} of {len(segments)} segments already dubbed")
    source = FrameSource(video, FPS)
    with pipeline_threads(), progress.bar("dubbing", n_out) as advance:
        for (start, stop), path in zip(bounds, segments):
            if path.exists():
                advance(stop - start)
                continue

            def frames(start=start, stop=stop):
                for frame in renderer.frames(source, start, stop):
                    yield frame
                    advance(1)

            write_video(path, frames(), FPS, None, config.crf, b_frames=False, preset=DUB_X264_PRESET)
    return segments
