"""MFCC features (the seed paper's input), four 10 ms sub-frames per 25 fps video frame."""

from __future__ import annotations

import numpy as np

from talkface.audio.align import fit_length
from talkface.config import FPS, SAMPLE_RATE

N_CEPSTRA = 13  # MFCCs (the first replaced by log energy) per 10 ms step
STEP_SECONDS = 0.01  # MFCC hop: four steps per 40 ms video frame
WINDOW_SECONDS = 0.025


def mfcc_features(samples: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """MFCC + delta for each video frame.

    Args:
        samples: (N,) float32 mono audio.
        n_frames: video frames to produce features for.

    Returns:
        (n_frames, 104) float32: for each frame, its four 10 ms MFCC+delta vectors (4 x 26).
    """
    import python_speech_features as psf

    steps_per_frame = int(round(1 / (fps * STEP_SECONDS)))
    cepstra = psf.mfcc(
        samples, sample_rate, winlen=WINDOW_SECONDS, winstep=STEP_SECONDS, numcep=N_CEPSTRA, nfilt=26,
        nfft=512, appendEnergy=True,
    )
    features = np.concatenate([cepstra, psf.delta(cepstra, 2)], axis=1)
    needed = steps_per_frame * n_frames
    features = fit_length(features, needed)
    return features.reshape(n_frames, -1).astype(np.float32)

