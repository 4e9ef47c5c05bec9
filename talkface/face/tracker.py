"""Per-frame dense face landmarks with MediaPipe Face Mesh, gap filling and zero-lag smoothing."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface import progress
from talkface.config import FPS, TrackConfig
from talkface.errors import MultipleFacesError, NoFaceError
from talkface.face.topology import N_LANDMARKS
from talkface.media import probe, read_frames, require_video
from talkface.signals import runs


@dataclass(frozen=True)
class FaceTrack:
    """Landmarks of the main face in every frame of a clip (at the normalised frame rate).

    Attributes:
        landmarks: (T, 478, 3) float32 pixels after gap filling and smoothing; x right, y down,
            z depth relative to the head centre in the same pixel scale. NaN where untracked.
        raw_landmarks: (T, 478, 3) float32 pixels as detected; NaN where no face was detected.
        boxes: (T, 4) float32 face box x0, y0, x1, y1 in pixels (NaN where untracked).
        fps: frames/s.
        width, height: frame size in pixels.
    """

    landmarks: np.ndarray
    raw_landmarks: np.ndarray
    boxes: np.ndarray
    fps: float
    width: int
    height: int

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)

    @property
    def detected(self) -> np.ndarray:
        """(T,) bool: a face was detected in the frame."""
        return ~np.isnan(self.raw_landmarks[:, 0, 0])

    @property
    def tracked(self) -> np.ndarray:
        """(T,) bool: landmarks are available (detected, or filled across a short gap)."""
        return ~np.isnan(self.landmarks[:, 0, 0])

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """Inclusive [first, last] frame ranges in which no face was detected."""
        return runs(~self.detected)

    @property
    def untracked_gaps(self) -> list[tuple[int, int]]:
        """Gaps too long to fill: frames that have no landmarks at all."""
        return runs(~self.tracked)


def format_ranges(ranges: list[tuple[int, int]], limit: int = 5) -> str:
    """'3-7, 40-41' style text for frame ranges, cut after `limit`."""
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges[:limit])
    return text + (f" and {len(ranges) - limit} more" if len(ranges) > limit else "")


@contextlib.contextmanager
def native_stderr_silenced():
    """Send what native code writes to fd 2 to /dev/null while Python's own stderr still shows.

    MediaPipe's C++ graph threads print TFLite/absl start-up notices at odd times; progress
    bars and error messages must still reach the user, so sys.stderr is pointed at a copy of
    the real stderr for the duration.
    """
    sys.stderr.flush()
    python_stderr = sys.stderr
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = python_stderr
        ctypes.CDLL(None).fflush(None)  # drop what C stdio buffered while fd 2 was /dev/null
        os.dup2(saved, 2)
        os.close(saved)


class FaceMeshTracker:
    """MediaPipe Face Mesh (478 points, tracking mode) over a stream of frames.

    Use as a context manager; `process` takes frames in order. Native log noise is
    silenced inside the `with` block.
    """

    def __init__(self, config: TrackConfig = TrackConfig()):
        self.config = config
        self._silenced = native_stderr_silenced()
        self._mesh = None

    def __enter__(self) -> "FaceMeshTracker":
        from mediapipe.python.solutions.face_mesh import FaceMesh

        self._silenced.__enter__()
        self._mesh = FaceMesh(
            static_image_mode=False,
            max_num_faces=2,
            refine_landmarks=True,
            min_detection_confidence=self.config.min_detection_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._mesh.close()
        finally:
            self._silenced.__exit__(*exc)

    def process(self, frame: np.ndarray) -> list[np.ndarray]:
        """Faces in one RGB uint8 (H, W, 3) frame: a list of (478, 3) pixel arrays, largest first."""
        height, width = frame.shape[:2]
        result = self._mesh.process(frame)
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            points *= np.array([width, height, width], dtype=np.float32)
            faces.append(points)
        return sorted(faces, key=lambda p: -_box_area(face_box(p)))


def face_box(points: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 pixels of a (478, >=2) landmark set."""
    return np.concatenate([points[:, :2].min(0), points[:, :2].max(0)])


def _box_area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))


class TrackBuilder:
    """Collects the tracker's per-frame faces and turns them into a FaceTrack."""

    def __init__(self, config: TrackConfig = TrackConfig()):
        self.config = config
        self._raw: list[np.ndarray] = []
        self._second: list[bool] = []

    def add(self, faces: list[np.ndarray]) -> np.ndarray | None:
        """Record one frame's faces (largest first); returns the main face's (478, 3) or None."""
        self._raw.append(faces[0] if faces else np.full((N_LANDMARKS, 3), np.nan, np.float32))
        self._second.append(
            len(faces) > 1
            and _box_area(face_box(faces[1])) >= self.config.second_face_area_ratio * _box_area(face_box(faces[0]))
        )
        return faces[0] if faces else None

    def finish(
        self, source: str | Path, fps: float, width: int, height: int, single_face: bool = True, cuts: np.ndarray | None = None
    ) -> FaceTrack:
        """Check the faces, fill short gaps, smooth, and return the track.

        `cuts`: (T,) bool, True at the first frame of each new shot; no gap is filled and no
        motion is smoothed across a cut.

        Raises:
            NoFaceError: no face in any frame.
            MultipleFacesError: `single_face` and a similar-sized second face in several frames.
        """
        raw_landmarks = np.stack(self._raw) if self._raw else np.zeros((0, N_LANDMARKS, 3), np.float32)
        if np.isnan(raw_landmarks[:, 0, 0]).all():
            raise NoFaceError(
                f"no face found in any of the {len(self._raw)} frames of {source}; "
                "use a clip in which one face is clearly visible, roughly frontal and at least 100 px tall"
            )
        second_ranges = runs(np.array(self._second))
        if single_face and sum(b - a + 1 for a, b in second_ranges) >= self.config.min_second_face_frames:
            raise MultipleFacesError(
                f"two faces of similar size in frames {format_ranges(second_ranges)} of {source}; "
                "talkface needs one speaker: crop the video to the person (e.g. ffmpeg -vf crop=...) and try again"
            )
        config = self.config
        starts = [0, *np.flatnonzero(cuts[1:]) + 1] if cuts is not None else [0]
        bounds = list(zip(starts, [*starts[1:], len(raw_landmarks)]))
        landmarks = np.concatenate([
            smooth_tracks(fill_gaps(raw_landmarks[a:b], config.max_interpolated_gap), config.smoothing_window, config.smoothing_order)
            for a, b in bounds
        ]) if len(raw_landmarks) else raw_landmarks
        boxes = np.array([face_box(p) for p in landmarks], dtype=np.float32)
        return FaceTrack(landmarks, raw_landmarks, boxes, fps, width, height)


def track_video(path: str | Path, config: TrackConfig = TrackConfig(), fps: float = FPS) -> FaceTrack:
    """Track the main face in every frame of a video.

    Args:
        path: the video.
        config: tracking settings.
        fps: frame rate the video is normalised to.

    Returns:
        The clip's FaceTrack.

    Raises:
        InputError: unreadable file or no video stream.
        NoFaceError: no face in any frame.
        MultipleFacesError: a second face of similar size in several frames.
    """
    info = probe(path)
    require_video(info)
    builder = TrackBuilder(config)
    with FaceMeshTracker(config) as tracker, progress.bar("tracking faces", int(info.duration * fps)) as advance:
        for frame in read_frames(path, fps):
            builder.add(tracker.process(frame))
            advance(1)
    return builder.finish(path, fps, info.width, info.height)


def fill_gaps(landmarks: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill runs of at most `max_gap` NaN frames: linear between neighbours, held at the clip's ends.

    Args:
        landmarks: (T, N, 3) with NaN rows for frames without a face.
        max_gap: longest run (frames) to fill; longer runs stay NaN.
    """
    filled = landmarks.copy()
    n_frames = len(landmarks)
    for first, last in runs(np.isnan(landmarks[:, 0, 0])):
        if last - first + 1 > max_gap:
            continue
        before, after = first - 1, last + 1
        if before < 0 and after >= n_frames:
            continue
        if before < 0:
            filled[first : last + 1] = landmarks[after]
        elif after >= n_frames:
            filled[first : last + 1] = landmarks[before]
        else:
            weights = (np.arange(first, last + 1) - before) / (after - before)
            filled[first : last + 1] = (1 - weights)[:, None, None] * landmarks[before] + weights[
                :, None, None
            ] * landmarks[after]
    return filled


def smooth_tracks(landmarks: np.ndarray, window: int, order: int) -> np.ndarray:
    """Zero-phase Savitzky-Golay smoothing of each tracked run: no lag, peaks kept.

    Args:
        landmarks: (T, N, 3), NaN where untracked.
        window: odd number of frames; runs shorter than it are left as they are.
        order: polynomial order (< window).
    """
    from scipy.signal import savgol_filter  # here: scipy.signal takes a second to import

    if window <= order:
        return landmarks
    smoothed = landmarks.copy()
    for first, last in runs(~np.isnan(landmarks[:, 0, 0])):
        if last - first + 1 >= window:
            smoothed[first : last + 1] = savgol_filter(landmarks[first : last + 1], window, order, axis=0)
    return smoothed
