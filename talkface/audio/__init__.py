"""Audio features aligned to video frames, behind one registry.

Each extractor takes (samples, n_frames) and returns (n_frames, D) float32; `FEATURES`
maps a setting name to its extractor so the choice is a configuration value.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from talkface.audio.mfcc import LOG_ENERGY_COLUMNS, mfcc_features
from talkface.audio.whisper import whisper_features
from talkface.config import FPS
from talkface.errors import InputError
from talkface.media import Audio

Extractor = Callable[..., np.ndarray]
FEATURES: dict[str, Extractor] = {"mfcc": mfcc_features, "whisper": whisper_features}
FEATURE_SETS = {"mfcc": ("mfcc",), "whisper": ("whisper",), "mfcc+whisper": ("mfcc", "whisper")}
MIN_AUDIO_SECONDS = 0.5  # shorter audio has too little speech to drive a face
SILENCE_DBFS = -60.0  # audio whose loudest 40 ms is quieter than this is called silent


def n_video_frames(audio: Audio, fps: float = FPS) -> int:
    """Video frames that cover the audio (rounded to the nearest frame)."""
    return int(round(audio.duration * fps))


def check_speech(audio: Audio, source: str) -> None:
    """Raise InputError for audio too short or silent to drive a face."""
    if audio.duration < MIN_AUDIO_SECONDS:
        raise InputError(
            f"{source} holds {audio.duration:.2f} s of audio; at least {MIN_AUDIO_SECONDS} s of speech is needed"
        )
    window = int(audio.sample_rate * 0.04)
    usable = len(audio.samples) // window * window
    power = (audio.samples[:usable].astype(np.float64).reshape(-1, window) ** 2).mean(1)
    loudest = 10 * np.log10(power.max() + 1e-20)
    if loudest < SILENCE_DBFS:
        raise InputError(
            f"{source} is silent (loudest 40 ms at {loudest:.0f} dBFS); give a recording with speech in it"
        )


def loudness_columns(feature_set: str) -> tuple[int, ...]:
    """The columns of `extract`'s output that hold log energy (MFCC's first cepstrum of each
    10 ms step); none for a set without MFCC first."""
    return LOG_ENERGY_COLUMNS if FEATURE_SETS.get(feature_set, ("",))[0] == "mfcc" else ()


def extract(audio: Audio, feature_set: str, n_frames: int | None = None) -> np.ndarray:
    """Concatenated features of `feature_set` ('mfcc', 'whisper' or 'mfcc+whisper'): (T, D) float32.

    Computed on the CPU whatever the device: Whisper's int8 encoder there gives the numbers the
    generic lip network was trained on (CUDA's float16 gives others), costs about 0.7 s per 30 s
    of audio on 2 cores, and needs none of the CUDA libraries CTranslate2's GPU build links to."""
    if feature_set not in FEATURE_SETS:
        raise InputError(f"unknown audio features {feature_set!r}; use one of {', '.join(FEATURE_SETS)}")
    n_frames = n_video_frames(audio) if n_frames is None else n_frames
    parts = []
    for name in FEATURE_SETS[feature_set]:
        parts.append(FEATURES[name](audio.samples, n_frames, audio.sample_rate, FPS))
    return np.concatenate(parts, axis=1)
