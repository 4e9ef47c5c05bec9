"""MFCC features (the seed paper's input), four 10 ms sub-frames per 25 fps video frame.

Computed a minute at a time, so memory stays flat for hours of audio; the result equals one
pass over the whole signal (pre-emphasis and deltas are given their context across chunks).
"""

from __future__ import annotations

import math

import numpy as np

from talkface.audio.align import fit_length
from talkface.config import FPS, SAMPLE_RATE

N_CEPSTRA = 13  # MFCCs (the first replaced by log energy) per 10 ms step
STEP_SECONDS = 0.01  # MFCC hop: four steps per 40 ms video frame
WINDOW_SECONDS = 0.025
PRE_EMPHASIS = 0.97
DELTA_WIDTH = 2  # steps either side in the delta regression
CHUNK_STEPS = 6000  # 10 ms steps computed at a time (one minute)
STEPS_PER_FRAME = 4  # 10 ms steps in each 40 ms video frame's feature vector
# the log-energy columns of a frame's vector: each step's first cepstrum (MFCC + delta: 2 x N_CEPSTRA a step)
LOG_ENERGY_COLUMNS = tuple(step * 2 * N_CEPSTRA for step in range(STEPS_PER_FRAME))


def mfcc_features(samples: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """MFCC + delta for each video frame.

    Args:
        samples: (N,) float32 mono audio.
        n_frames: video frames to produce features for.

    Returns:
        (n_frames, 104) float32: for each frame, its four 10 ms MFCC+delta vectors (4 x 26).
    """
    steps_per_frame = int(round(1 / (fps * STEP_SECONDS)))
    step, window = int(round(STEP_SECONDS * sample_rate)), int(round(WINDOW_SECONDS * sample_rate))
    n_steps = 1 + max(0, math.ceil((len(samples) - window) / step))
    chunks = [
        _chunk(samples, start, min(start + CHUNK_STEPS, n_steps), n_steps, step, window, sample_rate)
        for start in range(0, n_steps, CHUNK_STEPS)
    ]
    features = fit_length(np.concatenate(chunks), steps_per_frame * n_frames)
    return features.reshape(n_frames, -1).astype(np.float32)


def _chunk(samples: np.ndarray, first: int, stop: int, n_steps: int, step: int, window: int, sample_rate: int) -> np.ndarray:
    """MFCC + delta of steps [first, stop): cepstra of DELTA_WIDTH more steps each side feed the deltas."""
    import python_speech_features as psf

    lo, hi = max(first - DELTA_WIDTH, 0), min(stop + DELTA_WIDTH, n_steps)
    begin = lo * step
    end = len(samples) if hi == n_steps else (hi - 1) * step + window
    signal = samples[begin:end].astype(np.float32)
    emphasised = signal.copy()
    emphasised[1:] -= PRE_EMPHASIS * signal[:-1]
    if begin > 0:  # the sample before the chunk, as in one pass over the whole signal
        emphasised[0] -= PRE_EMPHASIS * samples[begin - 1]
    cepstra = psf.mfcc(
        emphasised, sample_rate, winlen=WINDOW_SECONDS, winstep=STEP_SECONDS, numcep=N_CEPSTRA, nfilt=26,
        nfft=512, preemph=0.0, appendEnergy=True,
    )
    both = np.concatenate([cepstra, psf.delta(cepstra, DELTA_WIDTH)], axis=1)
    return both[first - lo : first - lo + stop - first]
