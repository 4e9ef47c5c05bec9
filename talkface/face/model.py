"""The person's face model: a linear morphable mesh, its per-frame fit, and their storage.

`MorphableModel` is the interface the fitter, the audio->motion model and the renderer rely
on; `MeshFaceModel` is the default implementation built from the tracker's own mesh. Another
model (a user-supplied Basel Face Model, say) plugs in by implementing the same protocol.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from talkface.errors import CacheError
from talkface.face.geometry import apply_pose
from talkface.storage import atomic_write_bytes, load_npz, read_json_object, save_npz

MODEL_FORMAT = 1  # bump when the saved layout of MeshFaceModel changes
PROJECT_CHUNK = 1000  # frames placed at a time


class MorphableModel(Protocol):
    """A 3D face whose shape is mean + linear expression, with MediaPipe landmarks on it."""

    triangles: np.ndarray  # (F, 3) int32, counter-clockwise seen from the camera
    landmark_index: np.ndarray  # (478,) int: the vertex that carries each Face Mesh landmark

    @property
    def n_expression(self) -> int: ...

    def vertices(self, expression: np.ndarray) -> np.ndarray:
        """(T, K) expression coefficients -> (T, V, 3) model-space vertices."""
        ...


@dataclass(frozen=True)
class MeshFaceModel:
    """A face model built from one person's tracked clip (MediaPipe mesh topology).

    Attributes:
        mean_shape: (V, 3) float32 model units: the person's average face, frontal, centred,
            RMS radius 1; x to the subject's left on screen (right), y down, z away from camera.
        expression_basis: (K, V, 3) float32 orthonormal directions (model units).
        expression_std: (K,) float32 standard deviation of each coefficient over the clip.
        triangles: (F, 3) int32 oriented so the face's front is counter-clockwise on screen.
        uv: (V, 2) float32 texture coordinates in [0, 1], (0, 0) at the texture's top left.
        texture: (S, S, 3) uint8 RGB colours of the face taken from frontal frames.
    """

    mean_shape: np.ndarray
    expression_basis: np.ndarray
    expression_std: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray
    texture: np.ndarray

    @property
    def landmark_index(self) -> np.ndarray:
        return np.arange(len(self.mean_shape))

    @property
    def n_expression(self) -> int:
        return len(self.expression_basis)

    def vertices(self, expression: np.ndarray) -> np.ndarray:
        return self.mean_shape + np.einsum("tk,kvc->tvc", expression, self.expression_basis)

    def save(self, folder: Path) -> None:
        """Write model.npz + model.json into `folder` atomically."""
        save_npz(
            folder / "model.npz",
            mean_shape=self.mean_shape,
            expression_basis=self.expression_basis,
            expression_std=self.expression_std,
            triangles=self.triangles,
            uv=self.uv,
            texture=self.texture,
        )
        meta = {"format": MODEL_FORMAT, "kind": "mediapipe-mesh", "n_expression": self.n_expression}
        atomic_write_bytes(folder / "model.json", json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, folder: Path) -> "MeshFaceModel":
        """Read a model saved by `save`; CacheError if it is missing, corrupt or of another format."""
        meta_path = folder / "model.json"
        try:
            meta = read_json_object(meta_path)
        except (OSError, ValueError) as exc:
            raise CacheError(f"no readable face model in {folder} ({exc}); rerun talkface track or finetune") from exc
        if meta.get("format") != MODEL_FORMAT:
            raise CacheError(
                f"the face model in {folder} has format {meta.get('format')}, this talkface reads format "
                f"{MODEL_FORMAT}; rerun talkface track or finetune to rebuild it"
            )
        arrays = load_npz(folder / "model.npz")
        return cls(**{name: arrays[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FaceFit:
    """A clip's per-frame fit of a morphable model.

    Attributes:
        pose: (T, 6) float32: [pitch, yaw, roll] radians, [tx, ty] pixels, scale (pixels per
            model unit, the weak-perspective stand-in for depth). NaN where untracked.
        expression: (T, K) float32 coefficients of the model's expression basis; NaN where untracked.
    """

    pose: np.ndarray
    expression: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.pose[:, 0])


def project_landmarks(model: MorphableModel, fit: FaceFit) -> np.ndarray:
    """The model's Face Mesh landmarks placed in the image for every frame.

    Returns:
        (T, 478, 3) float32 pixels (NaN where the fit is invalid).
    """
    out = np.full((len(fit.pose), len(model.landmark_index), 3), np.nan, np.float32)
    valid = np.flatnonzero(fit.valid)
    for start in range(0, len(valid), PROJECT_CHUNK):  # chunks keep float64 temporaries small
        rows = valid[start : start + PROJECT_CHUNK]
        points = model.vertices(fit.expression[rows].astype(np.float64))[:, model.landmark_index]
        out[rows] = apply_pose(points, fit.pose[rows].astype(np.float64))
    return out


def place_vertices(model: MorphableModel, expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """One frame's model vertices in the image: (K,) expression and (6,) pose -> (V, 3) pixels."""
    vertices = model.vertices(np.asarray(expression, np.float64)[None])
    return apply_pose(vertices, np.asarray(pose, np.float64)[None])[0]


class ProjectedLandmarks:
    """(T, 478, 3) float32 landmarks of a motion (as `project_landmarks` gives them), projected
    from its expression and pose only when read: an hour of speech's are 0.5 GB, and `speak`
    renders from the expression and pose alone, so they are made whole only for a motion file
    (`--save-motion`) or a measurement. Indexing projects just the frames asked for; NumPy
    functions read the whole array."""

    def __init__(self, model: MorphableModel, fit: FaceFit):
        self._model, self._fit = model, fit
        self.shape = (len(fit.pose), len(model.landmark_index), 3)
        self.dtype, self.ndim = np.dtype(np.float32), 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        frames = np.arange(self.shape[0])[first]
        one = frames.ndim == 0
        frames = np.atleast_1d(frames)
        points = project_landmarks(self._model, FaceFit(self._fit.pose[frames], self._fit.expression[frames]))
        return points[0][rest] if one else points[(slice(None), *rest)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = project_landmarks(self._model, self._fit)
        return whole if dtype is None else whole.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self).astype(dtype)
