"""The generic, person-independent audio->lip model, trained by talkface on many people's clips.

A small temporal convolution network reads MFCC + Whisper features with +-0.6 s of context
and predicts lip motion in the speaker-independent space of `talkface.motion.lips`, through
a shared lip basis (the principal components of all corpus people's lip offsets). It ships
as one safetensors file whose metadata holds the hyperparameters, the feature statistics'
shapes, the clips it was trained on and its cross-validated scores; trained by
`scripts/train_lips.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkface.errors import CacheError
from talkface.storage import read_weights, save_weights

GENERIC_FORMAT = 1
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"  # shipped inside the package
GENERIC_PATH = WEIGHTS_DIR / "generic_lips.safetensors"
FEATURE_SET = "mfcc+whisper"
CHUNK_FRAMES = 3000  # frames predicted at a time (2 min of audio), so memory stays bounded


@dataclass(frozen=True)
class NetworkShape:
    """Hyperparameters that rebuild the network: feature width, lip-basis size, width, dilations."""

    n_features: int
    n_components: int
    width: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    dropout: float = 0.2

    @property
    def radius(self) -> int:
        """Frames of context either side that the network sees."""
        return sum(self.dilations)  # kernel 3: each layer adds its dilation on each side


class _Block(nn.Module):
    def __init__(self, width: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.drop(nn.functional.gelu(self.conv(x))))


class LipNetwork(nn.Module):
    """(B, F, T) normalised features -> (B, P) lip-basis coefficients per frame: (B, P, T)."""

    def __init__(self, shape: NetworkShape):
        super().__init__()
        self.shape = shape
        self.input = nn.Sequential(nn.Dropout(shape.dropout), nn.Conv1d(shape.n_features, shape.width, 1))
        self.blocks = nn.Sequential(*(_Block(shape.width, d, shape.dropout) for d in shape.dilations))
        self.output = nn.Conv1d(shape.width, shape.n_components, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(nn.functional.gelu(self.blocks(self.input(features))))


@dataclass(frozen=True)
class GenericLipModel:
    """The network with its input normalisation and output lip basis.

    Attributes:
        network: the trained LipNetwork (eval mode).
        feature_mean, feature_std: (F,) input normalisation.
        basis: (P, 120) lip basis (rows orthonormal); coefficients are in units of `scale`.
        scale: (P,) each component's std over the corpus.
        lip_mean: (120,) the corpus mean lip offset.
        meta: training record (clips, scores, date, command).
    """

    network: LipNetwork
    feature_mean: np.ndarray
    feature_std: np.ndarray
    basis: np.ndarray
    scale: np.ndarray
    lip_mean: np.ndarray
    meta: dict

    @property
    def radius(self) -> int:
        return self.network.shape.radius

    def predict_coefficients(self, features: np.ndarray) -> np.ndarray:
        """(T, F) features -> (T, P) lip-basis coefficients (in component-std units)."""
        if len(features) == 0:
            return np.zeros((0, len(self.scale)), np.float32)
        normalised = ((features - self.feature_mean) / self.feature_std).astype(np.float32)
        radius, outputs = self.radius, []
        padded = np.pad(normalised, ((radius, radius), (0, 0)), mode="edge")
        with torch.inference_mode():
            for start in range(0, len(features), CHUNK_FRAMES):
                stop = min(start + CHUNK_FRAMES, len(features))
                window = torch.from_numpy(np.ascontiguousarray(padded[start : stop + 2 * radius].T))[None]
                outputs.append(self.network(window)[0].numpy().T[radius : radius + stop - start])
        return np.concatenate(outputs)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(T, F) MFCC + Whisper features -> (T, 120) lip offsets, model units."""
        return self.lips_from_coefficients(self.predict_coefficients(features))

    def lips_from_coefficients(self, coefficients: np.ndarray) -> np.ndarray:
        return (coefficients * self.scale) @ self.basis + self.lip_mean

    def to_arrays(self, prefix: str = "generic_") -> dict[str, np.ndarray]:
        """Everything that rebuilds the model, as named arrays (for a profile's motion file)."""
        arrays = {f"{prefix}network.{k}": v.detach().numpy().copy() for k, v in self.network.state_dict().items()}
        for name in ("feature_mean", "feature_std", "basis", "scale", "lip_mean"):
            arrays[prefix + name] = np.asarray(getattr(self, name), np.float32)
        shape = self.network.shape
        header = {"format": GENERIC_FORMAT, "feature_set": FEATURE_SET, "shape": {**shape.__dict__, "dilations": list(shape.dilations)}}
        arrays[prefix + "header"] = np.array(json.dumps(header))
        arrays[prefix + "meta"] = np.array(json.dumps(self.meta))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "generic_") -> "GenericLipModel":
        """Rebuild from `to_arrays`; raises CacheError if the arrays are not a complete model of this format."""
        try:
            header = json.loads(str(arrays[prefix + "header"]))
            if header.get("format") != GENERIC_FORMAT:
                raise CacheError(f"generic lip model format {header.get('format')} is not {GENERIC_FORMAT}")
            shape = NetworkShape(**{**header["shape"], "dilations": tuple(header["shape"]["dilations"])})
            network = LipNetwork(shape)
            state = {k[len(prefix) + len("network.") :]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix + "network.")}
            network.load_state_dict(state)
            parts = {name: np.asarray(arrays[prefix + name], np.float32) for name in ("feature_mean", "feature_std", "basis", "scale", "lip_mean")}
            meta = json.loads(str(arrays[prefix + "meta"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CacheError(f"incomplete or damaged generic lip model ({exc})") from exc
        network.eval()
        return cls(network, meta=meta, **parts)

    def save(self, path: Path) -> None:
        """Write one safetensors file (tensors + JSON header and training record), atomically."""
        arrays = self.to_arrays("")
        save_weights(path, arrays, {"header": str(arrays.pop("header")), "meta": str(arrays.pop("meta"))})

    @classmethod
    def load(cls, path: Path = GENERIC_PATH) -> "GenericLipModel":
        """Load a model file; raise CacheError naming the file and the fix if it is missing or damaged."""
        from safetensors import SafetensorError

        fix = "reinstall talkface, or retrain it with `python scripts/train_lips.py`"
        if not path.is_file():
            raise CacheError(f"no generic lip model at {path}; {fix}")
        try:
            arrays, metadata = read_weights(path)
            arrays["header"] = np.array(metadata["header"])
            arrays["meta"] = np.array(metadata["meta"])
            return cls.from_arrays(arrays, "")
        except (SafetensorError, KeyError, OSError, CacheError) as exc:
            raise CacheError(f"the generic lip model {path} is damaged ({exc}); {fix}") from exc
