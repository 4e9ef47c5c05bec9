"""`talkface doctor`: what this installation has and what is missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package(name: str, dist: str, required: bool = True, why: str = "") -> Check:
    version = _version(dist)
    if version is None:
        return Check(name, False, f"not installed ({why or 'pip install ' + dist})", required)
    return Check(name, True, version, required)


def _opencv() -> Check:
    """OpenCV with its contrib modules (the guided filter), from whichever of its wheels has them
    (opencv-contrib-python or its -headless twin)."""
    try:
        import cv2
    except ImportError as exc:
        return Check("opencv", False, f"cannot import cv2 ({exc}): pip install opencv-contrib-python")
    if not hasattr(cv2, "ximgproc"):
        return Check("opencv", False, f"{cv2.__version__} has no contrib modules (ximgproc): pip install opencv-contrib-python")
    return Check("opencv", True, cv2.__version__)


def _ffmpeg() -> Check:
    try:
        import av
    except ImportError as exc:
        return Check("ffmpeg (PyAV)", False, f"cannot import av: {exc}")
    missing = []
    for codec, mode in (("libx264", "w"), ("aac", "w"), ("h264", "r"), ("aac", "r"), ("mp3", "r")):
        try:
            av.codec.Codec(codec, mode)
        except Exception:
            missing.append(f"{codec}({mode})")
    libavcodec = ".".join(str(v) for v in av.library_versions["libavcodec"])
    if missing:
        return Check("ffmpeg (PyAV)", False, f"libavcodec {libavcodec}, missing codecs: {', '.join(missing)}")
    return Check("ffmpeg (PyAV)", True, f"libavcodec {libavcodec} with libx264, aac, mp3")


def _tracker_model() -> Check:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return Check("face tracker model", False, "mediapipe not installed (pip install mediapipe==0.10.21)")
    root = Path(list(spec.submodule_search_locations)[0])
    model = root / "modules" / "face_landmark" / "face_landmark_with_attention.tflite"
    if not model.exists():
        return Check(
            "face tracker model", False, f"{model.name} missing from mediapipe {_version('mediapipe')}; "
            "mediapipe 0.10.30+ ships no models: pip install mediapipe==0.10.21"
        )
    return Check("face tracker model", True, f"{model} ({model.stat().st_size // 1024} KiB)")


def _identity_models() -> Check:
    from talkface.errors import DependencyError
    from talkface.evaluate.identity import models_folder

    try:
        folder = models_folder()
        import dlib
    except (DependencyError, ImportError) as exc:
        return Check("identity model (dlib)", False, str(exc), required=False)
    return Check("identity model (dlib)", True, f"dlib {dlib.__version__}, models in {folder}", required=False)


def _generic_lips() -> Check:
    from talkface.errors import CacheError
    from talkface.motion.generic import GENERIC_PATH, GenericLipModel

    try:
        model = GenericLipModel.load()
    except CacheError as exc:
        return Check("generic lip model", False, str(exc))
    scores = (model.meta.get("cross_validation") or {}).get("network", {})
    return Check(
        "generic lip model", True,
        f"{GENERIC_PATH.name}, trained {model.meta.get('trained', '?')} on {len(model.meta.get('clips', []))} clips, "
        f"leave-speakers-out mouth r {scores.get('mean_r', '?')}",
    )


def _generic_refiner() -> Check:
    """The refiner pretrained across the corpus, where finetune's refiner starts."""
    from talkface.errors import CacheError
    from talkface.refine.generic import GENERIC_REFINER_PATH, generic_refiner_meta

    try:
        meta = generic_refiner_meta()
    except CacheError as exc:
        return Check("generic refiner", False, str(exc), required=False)
    if meta is None:
        return Check("generic refiner", False, f"{GENERIC_REFINER_PATH} is missing: finetune's refiner would start from nothing; reinstall talkface", required=False)
    return Check("generic refiner", True, f"{GENERIC_REFINER_PATH.name}, {meta.get('steps', '?')} steps on {meta.get('clips', '?')} clips", required=False)


def _photo_models() -> Check:
    """The generic face kit and open mouth that `finetune --image` needs (photo profiles only)."""
    from talkface.errors import CacheError
    from talkface.motion.genericface import GenericFace
    from talkface.render.mouth import GenericMouth

    try:
        kit, mouth = GenericFace.load(), GenericMouth.load()
    except CacheError as exc:
        return Check("photo profile models", False, str(exc), required=False)
    return Check(
        "photo profile models", True,
        f"generic face kit from {len(kit.meta.get('clips', []))} clips ({len(kit.basis)} expression components); "
        f"open mouth from {mouth.meta.get('clip', '?')}",
        required=False,
    )


def _device() -> Check:
    try:
        import torch
    except ImportError as exc:
        return Check("device", False, f"cannot import torch: {exc}")
    if torch.cuda.is_available():
        return Check("device", True, f"cuda: {torch.cuda.get_device_name(0)} (torch {torch.__version__})")
    return Check("device", True, f"cpu only, {torch.get_num_threads()} threads (torch {torch.__version__}); no CUDA GPU seen")


def run_checks() -> list[Check]:
    """Every check, required ones first."""
    from talkface._version import __version__

    return [
        Check("talkface", True, __version__),
        Check("python", True, platform.python_version()),
        _package("numpy", "numpy"),
        _package("torch", "torch"),
        _package("mediapipe", "mediapipe"),
        _opencv(),
        _package("PyAV", "av"),
        _ffmpeg(),
        _tracker_model(),
        _generic_lips(),
        _generic_refiner(),
        _photo_models(),
        _identity_models(),
        _device(),
        _package("studio (gradio)", "gradio", required=False, why="talkface studio needs it: pip install 'talkface[studio]'"),
    ]


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks if c.required), "checks": [asdict(c) for c in checks]}
