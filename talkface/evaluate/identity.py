"""Identity: dlib's 128-d face embedding (weights shipped in the face-recognition-models wheel).

Two faces whose embeddings are closer than 0.6 are the same person by dlib's convention
(99.38% on LFW). The face box comes from our own tracker, so no extra detector runs.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from talkface.errors import DependencyError

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold for "same person"
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


def models_folder() -> Path:
    # the package's own __init__ imports pkg_resources, which new setuptools lacks: find it without importing
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            "identity metrics need dlib's face models: pip install dlib-bin==20.0.1 face-recognition-models==0.3.0"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    missing = [name for name in MODEL_FILES if not (folder / name).exists()]
    if missing:
        raise DependencyError(f"face-recognition-models is installed but lacks {', '.join(missing)}; reinstall it")
    return folder


@functools.lru_cache(maxsize=1)
def _dlib_models():
    folder = models_folder()
    try:
        import dlib
    except ImportError as exc:
        raise DependencyError(f"identity metrics need dlib: pip install dlib-bin==20.0.1 ({exc})") from exc
    predictor = dlib.shape_predictor(str(folder / MODEL_FILES[0]))
    recogniser = dlib.face_recognition_model_v1(str(folder / MODEL_FILES[1]))
    return dlib, predictor, recogniser


def face_embedding(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """128-d dlib embedding of the face whose Face Mesh landmarks are given.

    Args:
        frame: RGB uint8 (H, W, 3).
        landmarks: (478, >=2) pixels.
    """
    dlib, predictor, recogniser = _dlib_models()
    x0, y0 = np.floor(landmarks[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(0)).astype(int)
    image = np.ascontiguousarray(frame)
    shape = predictor(image, dlib.rectangle(int(x0), int(y0), int(x1), int(y1)))
    return np.array(recogniser.compute_face_descriptor(image, shape), dtype=np.float64)


def identity_distance(generated: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Distance between the mean embeddings of two sets of faces (lower is more alike)."""
    return float(np.linalg.norm(np.mean(generated, axis=0) - np.mean(reference, axis=0)))
