"""talkface: audio-driven talking-face video, personalised from a short clip, offline.

Library API (the CLI is a thin layer over these):
    talkface.track(video, out)                    track the face, reconstruct it in 3D, overlay video.
    talkface.finetune.finetune(video, out)        learn a person profile (motion model, GAN refiner).
    talkface.finetune_image(photo, out)           a person profile from one photo (generic motion, seconds).
    talkface.speak.speak(audio, out, person)      a video of that person saying the audio.
    talkface.render_motion.render(motion, out)     any motion file of that person as a video.
    talkface.reenact.reenact(driver, out)         that person performing another video.
    talkface.dub(video, audio, out)               footage lip-synced to new audio (its own frames, lower face redrawn).
    talkface.profile.load_profile(folder)         a finetuned person.
    talkface.batch(manifest, workers=..., ...)    many jobs from a CSV/JSONL manifest, resumable.
"""

from talkface._version import __version__
from talkface.track import TrackResult, TrackSummary, track


def __getattr__(name):
    """`talkface.batch`, `talkface.dub` and `talkface.finetune_image` import torch and friends: load them on first use."""
    import importlib

    if name == "batch":
        return importlib.import_module("talkface.batch")
    if name == "dub":
        return importlib.import_module("talkface.dub").dub
    if name == "finetune_image":
        return importlib.import_module("talkface.oneshot").finetune_image
    raise AttributeError(f"module 'talkface' has no attribute {name!r}")


__all__ = ["TrackResult", "TrackSummary", "__version__", "batch", "dub", "finetune_image", "track"]
