"""The generic, person-independent audio->lip model, trained by talkface on many people's clips.

A small temporal convolution network reads MFCC + Whisper features with +-0.6 s of context
and predicts lip motion in the speaker-independent space of `talkface.motion.lips`, through
a shared lip basis (the principal components of all corpus people's lip offsets). It ships
as one safetensors file whose metadata holds the hyperparameters, the feature statistics'
shapes, the clips it was trained on and its cross-validated scores; trained by
`scripts/train_lips.py`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
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
ADAPT_STEPS = 150  # optimiser steps that adapt a copy of the network to one person's clip
ADAPT_RATE = 3e-4  # Adam step size: small, so 20 s of one person nudges the corpus's model, not rewrites it
ADAPT_WINDOW = 100  # frames per training window (4 s)
ADAPT_BATCH = 8
FEATURE_NOISE = 0.1  # std of the noise added to normalised features while training (corpus and person alike)


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


def lip_loss(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 + velocity L1 (crisp closures) + a term holding each component's spread (full amplitude).

    Args:
        out, target: (B, P, T) lip-basis coefficients; mask: (B, 1, T) 1 where the target is real.
    """
    n = mask.sum().clamp(min=1)
    l1 = ((out - target).abs() * mask).sum() / n / out.shape[1]
    pair = mask[:, :, 1:] * mask[:, :, :-1]
    velocity = ((out.diff(dim=2) - target.diff(dim=2)).abs() * pair).sum() / pair.sum().clamp(min=1) / out.shape[1]

    def spread(values):
        centred = values - (values * mask).sum(2, keepdim=True) / mask.sum(2, keepdim=True).clamp(min=1)
        return ((centred**2 * mask).sum((0, 2)) / n).sqrt()

    amplitude = (spread(out) - spread(target)).abs().mean()
    return l1 + 2.0 * velocity + 0.5 * amplitude


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

    def coefficients_of(self, lips: np.ndarray) -> np.ndarray:
        """(T, 120) lip offsets -> (T, P) lip-basis coefficients (the inverse of lips_from_coefficients on the basis's span)."""
        return ((lips - self.lip_mean) @ self.basis.T) / self.scale

    def adapted(self, features: np.ndarray, lips: np.ndarray, valid: np.ndarray, steps: int | None = None, seed: int = 0) -> "GenericLipModel":
        """A copy of the model finetuned on one person's clip: every layer, a few small steps.

        Args:
            features: (T, F) the clip's features, in sync with its lips.
            lips: (T, 120) the person's lip offsets (anything where `valid` is False).
            valid: (T,) frames whose lips were tracked.
            steps: optimiser steps (default ADAPT_STEPS; 0: an unchanged copy).
            seed: seeds the windows, the dropout and the feature noise (same seed, same model).
        """
        steps = ADAPT_STEPS if steps is None else steps
        network = copy.deepcopy(self.network)
        rng = np.random.default_rng(seed)
        radius, window = self.radius, min(ADAPT_WINDOW, len(features))
        inputs = np.pad((features - self.feature_mean) / self.feature_std, ((radius, radius), (0, 0)), mode="edge").astype(np.float32)
        targets = np.nan_to_num(self.coefficients_of(lips)).astype(np.float32)
        mask = valid.astype(np.float32)
        optimiser = torch.optim.Adam(network.parameters(), lr=ADAPT_RATE)
        network.train()
        with torch.random.fork_rng(devices=[]):  # dropout and noise seeded here, the caller's torch state untouched
            torch.manual_seed(seed)
            for _ in range(steps if valid.any() else 0):
                starts = rng.integers(0, len(features) - window + 1, ADAPT_BATCH)
                x = torch.from_numpy(np.stack([inputs[s : s + window + 2 * radius] for s in starts]).transpose(0, 2, 1).copy())
                x += FEATURE_NOISE * torch.randn(x.shape)
                y = torch.from_numpy(np.stack([targets[s : s + window] for s in starts]).transpose(0, 2, 1).copy())
                m = torch.from_numpy(np.stack([mask[s : s + window] for s in starts]))[:, None]
                loss = lip_loss(network(x)[:, :, radius : radius + window], y, m)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        network.eval()
        return replace(self, network=network, meta={**self.meta, "adapted_steps": steps})

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
