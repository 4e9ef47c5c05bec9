"""Metric functions on arrays: one definition, used by `talkface evaluate` and every benchmark.

Units: images are RGB uint8; landmarks are pixels (MediaPipe Face Mesh indexing); distances
that compare faces of different sizes are rescaled to a face width of FACE_WIDTH pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face import topology
from talkface.face.topology import eye_openness  # noqa: F401  (re-exported: metrics users read them here)
from talkface.signals import best_lag, blink_frames, pearson  # noqa: F401  (re-exported likewise)

FACE_WIDTH = 256.0  # px: landmark distances are reported as if the face were this wide
PSNR_CAP = 100.0  # dB reported for identical images (the true value is infinite)
MOUTH_CROP = 96  # px: side of the square mouth crop that sharpness is measured on


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (higher is better), capped at PSNR_CAP for identical images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return PSNR_CAP if mse <= 1e-10 else float(min(PSNR_CAP, 10 * np.log10(255.0**2 / mse)))


SSIM_SIGMA = 1.5  # Gaussian window of Wang et al. 2004
SSIM_RADIUS = 5  # = int(3.5 * sigma + 0.5): the window is 11 x 11
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two RGB uint8 images (higher is better, 1 when identical).

    Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), computed per channel and
    averaged, border of half a window left out: the same numbers as scikit-image's
    `structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)` to 1e-6,
    about 3x faster (float32 OpenCV filtering).
    """
    size = 2 * SSIM_RADIUS + 1
    if min(a.shape[:2]) < size:
        return float("nan")
    x, y = a.astype(np.float32), b.astype(np.float32)

    def blur(image):
        return cv2.GaussianBlur(image, (size, size), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x**2
    var_y = blur(y * y) - mean_y**2
    cov = blur(x * y) - mean_x * mean_y
    numerator = (2 * mean_x * mean_y + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mean_x**2 + mean_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    ratio = numerator / denominator
    r = SSIM_RADIUS
    return float(ratio[r:-r, r:-r].mean())


def face_width(landmarks: np.ndarray) -> np.ndarray:
    """Horizontal extent of the face mesh in pixels: (..., 478, >=2) -> (...)."""
    x = landmarks[..., : topology.N_MESH, 0]
    return x.max(-1) - x.min(-1)


def landmark_distance(generated: np.ndarray, reference: np.ndarray, indices: np.ndarray | None = None) -> float:
    """Mean 2D distance between corresponding landmarks, rescaled to a FACE_WIDTH-wide face
    (lower is better). M-LMD uses the lip points, F-LMD all mesh points. Frames where either
    has no face are skipped.

    Args:
        generated, reference: (T, 478, >=2) pixels, NaN where no face.
        indices: landmark subset; default every mesh point.
    """
    indices = np.arange(topology.N_MESH) if indices is None else indices
    scale = FACE_WIDTH / face_width(reference)
    error = np.linalg.norm(generated[:, indices, :2] - reference[:, indices, :2], axis=-1).mean(-1) * scale
    return float(np.nanmean(error))


def speech_envelope(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Log RMS energy (dB) of the audio in a 2-frame window centred on each video frame."""
    hop = sample_rate / fps
    window = int(2 * hop)
    envelope = np.empty(n_frames)
    for index in range(n_frames):
        centre = int((index + 0.5) * hop)
        chunk = samples[max(0, centre - window // 2) : centre + window // 2]
        envelope[index] = 10 * np.log10(np.mean(chunk.astype(np.float64) ** 2) + 1e-10) if len(chunk) else -100.0
    return envelope


def head_speed_loudness_r(pose_degrees: np.ndarray, envelope: np.ndarray, smoothing: int = 12) -> float:
    """Correlation of head speed (pitch and yaw, degrees/frame) with speech loudness (`speech_envelope`),
    both smoothed over `smoothing` frames: does the head move more where the speech is loud?"""
    from scipy.ndimage import uniform_filter1d

    speed = np.linalg.norm(np.diff(pose_degrees[:, :2], axis=0, prepend=pose_degrees[:1, :2]), axis=1)
    return pearson(uniform_filter1d(speed, smoothing), uniform_filter1d(np.asarray(envelope, np.float64), smoothing))


def landmark_jitter(landmarks: np.ndarray) -> float:
    """Mean magnitude of the second temporal difference of the mesh points, rescaled to a
    FACE_WIDTH-wide face (pixels/frame², lower is steadier)."""
    scale = FACE_WIDTH / face_width(landmarks)
    second = landmarks[2:, : topology.N_MESH, :2] - 2 * landmarks[1:-1, : topology.N_MESH, :2] + landmarks[:-2, : topology.N_MESH, :2]
    magnitude = np.linalg.norm(second, axis=-1).mean(-1) * scale[1:-1]
    return float(np.nanmean(magnitude))


def mouth_box(landmarks: np.ndarray, width: int, height: int, margin: float = 1.6) -> tuple[int, int, int, int]:
    """Square box around the lips (x0, y0, x1, y1), `margin` times the lip width, inside the frame."""
    lips = landmarks[topology.lip_indices(), :2]
    centre = (lips.min(0) + lips.max(0)) / 2
    half = max(8.0, (lips[:, 0].max() - lips[:, 0].min()) * margin / 2)
    x0, y0 = np.floor(centre - half).astype(int)
    x1, y1 = np.ceil(centre + half).astype(int)
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def mouth_crop(frame: np.ndarray, landmarks: np.ndarray, size: int = MOUTH_CROP) -> np.ndarray:
    """The mouth region resized to size x size (RGB uint8)."""
    x0, y0, x1, y1 = mouth_box(landmarks, frame.shape[1], frame.shape[0])
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher is sharper)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
