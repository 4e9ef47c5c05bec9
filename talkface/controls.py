"""User controls over a motion before it is rendered: head pose and mouth amplitude.

Pose: fixed offsets (degrees), calmer or livelier head motion (`pose_scale`), a still head,
and frontalisation (the head faces the camera on average). Mouth: the lip and jaw motion scaled
by `mouth_scale` without touching the eyes. A request that turns the head beyond what the
person's clip shows is allowed but reported, since the face's texture only covers those views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkface.errors import InputError
from talkface.face import topology
from talkface.face.model import FaceFit, MeshFaceModel, ProjectedLandmarks
from talkface.motion import Motion
from talkface.profile import Profile

ANGLES = ("pitch", "yaw", "roll")
RANGE_MARGIN_DEG = 5.0  # how far past the clip's own head angles a request may go unremarked
NOSE_TIP = 1


@dataclass(frozen=True)
class Controls:
    """Attributes:
    yaw, pitch, roll: degrees added to the head's angles (the signs of the angles that
        `talkface evaluate` and `track` report).
    pose_scale: head motion around its average, times this (0: still, 0.5: calmer, 1.5: livelier).
    frontal: remove the head's average rotation, so it faces the camera.
    mouth_scale: amplitude of lip and jaw motion: the standard deviation of mouth opening is
        multiplied by this (calibrated on the person's clip; 1: as predicted).
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    pose_scale: float = 1.0
    frontal: bool = False
    mouth_scale: float = 1.0

    def check(self) -> None:
        if not 0 <= self.pose_scale <= 3:
            raise InputError(f"--pose-scale {self.pose_scale} is out of range; use 0 (still) to 3")
        if not 0 <= self.mouth_scale <= 3:
            raise InputError(f"--mouth-scale {self.mouth_scale} is out of range; use 0 (closed) to 3")
        for name in ANGLES:
            if abs(getattr(self, name)) > 60:
                raise InputError(f"--{name} {getattr(self, name)} is out of range; use -60 to 60 degrees")

    @property
    def is_identity(self) -> bool:
        return self == Controls()


def apply_controls(motion: Motion, profile: Profile, controls: Controls) -> tuple[Motion, list[str]]:
    """A motion of the profile's person with the controls applied, and a note for each head
    angle beyond the range of the person's clip (whose expressions also calibrate `mouth_scale`)."""
    controls.check()
    if controls.is_identity:
        return motion, []
    pose = motion.pose.astype(np.float64).copy()
    centre = np.median(pose, 0)
    pose[:, :5] = centre[:5] + controls.pose_scale * (pose[:, :5] - centre[:5])
    pose[:, 5] = centre[5] * (pose[:, 5] / centre[5]) ** controls.pose_scale
    if controls.frontal:
        pose[:, :3] -= centre[:3]
    pose[:, :3] += np.radians([controls.pitch, controls.yaw, controls.roll])
    expression = motion.expression.astype(np.float64)
    if controls.mouth_scale != 1.0:
        # a photo profile's one frame does not move: the motion itself calibrates the scaling
        reference = motion.expression if profile.is_photo else profile.clip_fit.expression
        expression = expression @ mouth_scaling(profile.face, controls.mouth_scale, reference).T
    fit = FaceFit(pose.astype(np.float32), expression.astype(np.float32))
    return Motion(fit.expression, fit.pose, ProjectedLandmarks(profile.face, fit), motion.fps), range_notes(pose, profile.clip_fit.pose)


def view_change(before: Motion, after: Motion) -> np.ndarray | None:
    """(T, 3) radians: the head angles `apply_controls` added (None: none)."""
    change = after.pose[:, :3].astype(np.float64) - before.pose[:, :3].astype(np.float64)
    return change if np.abs(change).max(initial=0.0) > 0 else None


def lower_face_ramp(face: MeshFaceModel) -> np.ndarray:
    """(V,) weight of each vertex in the lower face: 0 at and above the nose tip, 1 from the
    middle of the lips down, a smoothstep between (the part `dub` redraws and `mouth_scale` scales)."""
    mean = face.mean_shape.astype(np.float64)
    lips = mean[topology.lip_indices()]
    nose_y = mean[NOSE_TIP, 1]
    ramp = np.clip((mean[:, 1] - nose_y) / max(lips[:, 1].mean() - nose_y, 1e-6), 0, 1)
    return ramp * ramp * (3 - 2 * ramp)  # smoothstep


def mouth_scaling(face: MeshFaceModel, scale: float, reference: np.ndarray) -> np.ndarray:
    """(K, K) matrix on expression coefficients that scales the lower face's motion.

    Each coefficient's displacement field is weighted per vertex (1 below the nose, 0 at the
    eyes, a smooth ramp between) and projected back onto the orthonormal basis. The basis only
    spans part of such a field, so the weight is calibrated (bisection) until the standard
    deviation of mouth opening over `reference` (the person's clip expressions) changes by
    exactly `scale`.
    """
    basis = face.expression_basis.astype(np.float64)
    mean = face.mean_shape.astype(np.float64)
    ramp = lower_face_ramp(face)

    def matrix(factor: float) -> np.ndarray:
        return np.einsum("jvc,v,kvc->jk", basis, 1 + (factor - 1) * ramp, basis)

    def spread(expression: np.ndarray) -> float:
        return float(np.std(topology.mouth_openness(mean + np.einsum("tk,kvc->tvc", expression, basis))))

    reference = reference.astype(np.float64)
    target = scale * spread(reference)
    low, high = 0.0, 8.0
    for _ in range(30):
        middle = (low + high) / 2
        if spread(reference @ matrix(middle).T) < target:
            low = middle
        else:
            high = middle
    return matrix((low + high) / 2)


def range_notes(pose: np.ndarray, clip_pose: np.ndarray) -> list[str]:
    clip = np.degrees(clip_pose[~np.isnan(clip_pose).any(1), :3])
    angles = np.degrees(pose[:, :3])
    notes = []
    for axis, name in enumerate(ANGLES):
        low, high = clip[:, axis].min(), clip[:, axis].max()
        reach_low, reach_high = angles[:, axis].min(), angles[:, axis].max()
        if reach_low < low - RANGE_MARGIN_DEG or reach_high > high + RANGE_MARGIN_DEG:
            notes.append(
                f"{name} reaches {reach_low:+.0f}..{reach_high:+.0f} degrees but the person's clip only shows "
                f"{low:+.0f}..{high:+.0f}: the face's texture does not cover that view, expect stretching"
            )
    return notes
