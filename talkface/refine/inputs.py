"""What the generator sees for one frame, built the same way in training and in `speak`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkface.face import topology
from talkface.refine.crop import FaceCrop, face_crop, mouth_masks
from talkface.render.composite import INNER_LIPS


@dataclass(frozen=True)
class CropInputs:
    """One frame's crop-space inputs (uint8 images, float masks in [0, 1])."""

    crop: FaceCrop
    rendered: np.ndarray  # (S, S, 3) the coarse render of this frame
    previous: np.ndarray  # (S, S, 3) the coarse render of the frame before, in this frame's crop
    coverage: np.ndarray  # (S, S) where the rendered face is
    opening: np.ndarray  # (S, S) the mouth opening
    region: np.ndarray  # (S, S) the lips with a margin: where the memory read is used
    lips: np.ndarray  # (40, 2) lip points in the crop


def crop_inputs(rendered: np.ndarray, previous: np.ndarray, coverage: np.ndarray, vertices: np.ndarray, size: int) -> CropInputs:
    """Crop one coarse frame (and its predecessor and face coverage) around the placed face."""
    crop = face_crop(vertices, size)
    lips = crop.points(vertices[topology.lip_indices()])
    opening, region = mouth_masks(lips, crop.points(vertices[list(INNER_LIPS)]), size)
    return CropInputs(crop, crop.cut(rendered), crop.cut(previous), crop.cut(coverage.astype(np.float32)), opening, region, lips)


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    return np.moveaxis(images.astype(np.float32) / 127.5 - 1.0, -1, -3)


def generator_input(rendered, previous, memory, coverage, opening, region) -> torch.Tensor:
    """Stack a batch of crop inputs into the generator's (B, 11, S, S) tensor.

    Args:
        rendered, previous, memory: (B, S, S, 3) images (uint8 or float 0-255).
        coverage, opening, region: (B, S, S) masks in [0, 1].
    """
    rendered_unit = to_unit(np.asarray(rendered))
    memory_unit = to_unit(np.asarray(memory))
    region = np.asarray(region, np.float32)[:, None]
    mixed = rendered_unit + region * (memory_unit - rendered_unit)  # the memory only around the lips
    masks = np.stack([np.asarray(coverage, np.float32), np.asarray(opening, np.float32)], 1) * 2 - 1
    return torch.from_numpy(np.concatenate([rendered_unit, to_unit(np.asarray(previous)), mixed, masks], 1))
