"""Motion: per-frame expression and head pose, and the motion file every stage exchanges."""

from talkface.motion.io import Motion, load_motion, save_motion

__all__ = ["Motion", "load_motion", "save_motion"]
