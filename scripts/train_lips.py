"""Train the generic audio->lip model shipped as talkface/weights/generic_lips.safetensors.

Usage:
    python scripts/corpus.py                      # once: track and featurise every clip (~5 min)
    python scripts/train_lips.py [--folds 6] [--steps 2500] [--exclude congressman_d] [--no-ship]

1. Loads the prepared clips (out/corpus/*.npz) and estimates each clip's audio/video offset
   against a leave-speakers-out ridge, relative to the corpus median, and corrects it.
2. Learns the shared lip basis (principal components of every person's lip offsets).
3. Compares, by leave-speakers-out cross-validation (people grouped into folds, never split),
   a ridge on +-0.2 s of features (the line to beat) and the temporal conv net; prints per
   speaker mouth-opening r and amplitude ratio.
4. Trains the net on every clip except the excluded people (default: congressman_d, the
   benchmark's person) and writes it with its training record. Takes ~15 min on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkface.evaluate.metrics import best_lag, pearson  # noqa: E402
from talkface.motion.generic import FEATURE_NOISE, GENERIC_PATH, GenericLipModel, LipNetwork, NetworkShape, lip_loss  # noqa: E402
from talkface.motion.lips import opening_from_offsets  # noqa: E402
from talkface.motion.model import shift_features  # noqa: E402
from talkface.motion.ridge import Ridge, stack_context  # noqa: E402
from talkface.signals import subframe_lag  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RIDGE_RADIUS = 5  # frames either side for the ridge baseline
RIDGE_ALPHA = 3e3
RIDGE_DIMS = 160  # principal components of the features the ridge reads (keeps its solve to seconds)
N_COMPONENTS = 16  # lip-basis size: >99% of the lip variance
MAX_LAG = 6  # frames of audio/video offset searched per clip
WINDOW = 64  # frames per training window


@dataclass
class Clip:
    name: str
    person: str
    language: str
    features: np.ndarray  # (T, F) float32 MFCC + Whisper
    lips: np.ndarray  # (T, 120)
    opening: np.ndarray  # (T,)
    neutral: np.ndarray  # (40, 3)
    valid: np.ndarray  # (T,) bool
    sha256: str
    lag: float = 0.0  # audio/video offset, frames (fractional)

    def shifted_features(self) -> np.ndarray:
        """Features moved by the clip's lag: frame t reads the audio of t - lag."""
        return shift_features(self.features, self.lag)


def load_clips(folder: Path) -> list[Clip]:
    clips = []
    for path in sorted(folder.glob("*.npz")):
        data = np.load(path)
        features = np.concatenate([data["mfcc"], data["whisper"]], axis=1).astype(np.float32)
        clips.append(Clip(path.stem, str(data["person"]), str(data["language"]), features, data["lips"], data["opening"],
                          data["neutral"], data["valid"].astype(bool), str(data["video_sha256"])))
    return clips


def folds_by_person(clips: list[Clip], n_folds: int) -> list[set[str]]:
    """People dealt into folds by frame count, largest first, so folds are of similar size."""
    frames: dict[str, int] = {}
    for clip in clips:
        frames[clip.person] = frames.get(clip.person, 0) + int(clip.valid.sum())
    folds: list[set[str]] = [set() for _ in range(n_folds)]
    sizes = [0] * n_folds
    for person in sorted(frames, key=frames.get, reverse=True):
        smallest = int(np.argmin(sizes))
        folds[smallest].add(person)
        sizes[smallest] += frames[person]
    return folds


def lip_basis(clips: list[Clip]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, 120) basis, (P,) component stds and (120,) mean of all valid lip offsets."""
    lips = np.concatenate([c.lips[c.valid] for c in clips]).astype(np.float64)
    mean = lips.mean(0)
    _, singular, vt = np.linalg.svd(lips - mean, full_matrices=False)
    explained = (singular[:N_COMPONENTS] ** 2).sum() / (singular**2).sum()
    print(f"lip basis: {N_COMPONENTS} components explain {explained:.4f} of the lip variance")
    scale = singular[:N_COMPONENTS] / np.sqrt(len(lips))
    return vt[:N_COMPONENTS].astype(np.float32), scale.astype(np.float32), mean.astype(np.float32)


def coefficients(clip: Clip, basis, scale, mean) -> np.ndarray:
    return ((clip.lips - mean) @ basis.T) / scale


# ---------------------------------------------------------------- ridge baseline
@dataclass
class FeatureRidge:
    """Standardised features -> their leading principal components, stacked +-RIDGE_RADIUS -> ridge."""

    mean: np.ndarray
    std: np.ndarray
    projection: np.ndarray
    ridge: Ridge

    def inputs(self, features: np.ndarray) -> np.ndarray:
        return stack_context(((features - self.mean) / self.std) @ self.projection, RIDGE_RADIUS)


def train_ridge(clips: list[Clip], basis, scale, mean) -> FeatureRidge:
    features = np.concatenate([c.shifted_features()[c.valid] for c in clips])
    f_mean, f_std = features.mean(0), features.std(0) + 1e-3
    projection = np.linalg.svd((features - f_mean) / f_std, full_matrices=False)[2][:RIDGE_DIMS].T
    model = FeatureRidge(f_mean, f_std, projection, None)
    x = np.concatenate([model.inputs(c.shifted_features())[c.valid] for c in clips])
    y = np.concatenate([coefficients(c, basis, scale, mean)[c.valid] for c in clips])
    model.ridge = Ridge.fit(x, y, RIDGE_ALPHA)
    return model


def ridge_predict(model: FeatureRidge, clip: Clip, basis, scale, mean, shifted: bool = True) -> np.ndarray:
    features = clip.shifted_features() if shifted else clip.features
    return (model.ridge.predict(model.inputs(features)) * scale) @ basis + mean


# ---------------------------------------------------------------- temporal conv net
def train_network(clips: list[Clip], basis, scale, mean, steps: int, seed: int = 0, log: bool = False) -> GenericLipModel:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    all_features = np.concatenate([c.features[c.valid] for c in clips])
    feature_mean, feature_std = all_features.mean(0), all_features.std(0) + 1e-3
    shape = NetworkShape(n_features=all_features.shape[1], n_components=len(scale))
    network = LipNetwork(shape)
    radius = shape.radius
    inputs = [np.pad((c.shifted_features() - feature_mean) / feature_std, ((radius, radius), (0, 0)), mode="edge").astype(np.float32) for c in clips]
    targets = [coefficients(c, basis, scale, mean).astype(np.float32) for c in clips]
    weights = np.array([c.valid.sum() for c in clips], np.float64)
    weights = np.sqrt(weights) / np.sqrt(weights).sum()  # long clips count more, not overwhelmingly
    optimiser = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    network.train()
    batch = 24
    for step in range(steps):
        xs, ys, ms = [], [], []
        for index in rng.choice(len(clips), batch, p=weights):
            clip, length = clips[index], len(clips[index].lips)
            stretch = rng.uniform(0.85, 1.15)  # speaking-rate augmentation: features and lips resampled together
            span = min(length, int(WINDOW * stretch))
            start = rng.integers(0, length - span + 1)
            times = np.linspace(start, start + span - 1, WINDOW)
            near = np.clip(np.round(times).astype(int), 0, length - 1)
            x_times = np.clip(np.round(np.linspace(start - radius * stretch, start + span - 1 + radius * stretch, WINDOW + 2 * radius)).astype(int) + radius, 0, len(inputs[index]) - 1)
            xs.append(inputs[index][x_times])
            ys.append(targets[index][near])
            ms.append(clip.valid[near])
        x = torch.from_numpy(np.stack(xs).transpose(0, 2, 1).copy())
        x += FEATURE_NOISE * torch.randn(x.shape)
        y = torch.from_numpy(np.stack(ys).transpose(0, 2, 1).copy())
        m = torch.from_numpy(np.stack(ms).astype(np.float32))[:, None]
        out = network(x)[:, :, radius:-radius]
        loss = lip_loss(out, y, m)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if log and step % 500 == 0:
            print(f"  step {step}: loss {loss.item():.4f}", flush=True)
    network.eval()
    return GenericLipModel(network, feature_mean.astype(np.float32), feature_std.astype(np.float32), basis, scale, mean, {})


# ---------------------------------------------------------------- evaluation
def clip_scores(clip: Clip, predicted_lips: np.ndarray) -> dict:
    predicted = opening_from_offsets(clip.neutral, predicted_lips)[clip.valid]
    real = opening_from_offsets(clip.neutral, clip.lips)[clip.valid]
    lag, _ = best_lag(predicted, real, MAX_LAG)
    return {"r": pearson(predicted, real), "amplitude": float(predicted.std() / max(real.std(), 1e-6)), "best_lag": lag,
            "closure": closure_recall(predicted, real)}


def closure_recall(predicted: np.ndarray, real: np.ndarray, tolerance: int = 2) -> float:
    """Share of real closures (opening in the real lowest 10%) the prediction also closes within +-tolerance frames.

    "Closed" is the same level for both: at or below the real 10th percentile plus a tenth of
    the real 10-90 percentile range.
    """
    low, high = np.percentile(real, [10, 90])
    level = low + 0.1 * (high - low)
    real_closed = real <= np.percentile(real, 10)
    predicted_closed = predicted <= level
    near = np.zeros_like(predicted_closed)
    for shift in range(-tolerance, tolerance + 1):
        near |= np.roll(predicted_closed, shift)
    return float(near[real_closed].mean()) if real_closed.any() else float("nan")


def estimate_lags(clips: list[Clip], folds: list[set[str]], basis, scale, mean) -> None:
    """Each clip's audio/video offset, to a fraction of a frame, against a ridge that never saw
    its person; set relative to the median."""
    for fold in folds:
        ridge = train_ridge([c for c in clips if c.person not in fold], basis, scale, mean)
        for clip in (c for c in clips if c.person in fold):
            predicted = opening_from_offsets(clip.neutral, ridge_predict(ridge, clip, basis, scale, mean, shifted=False))
            real = opening_from_offsets(clip.neutral, clip.lips)
            clip.lag, _ = subframe_lag(predicted[clip.valid], real[clip.valid], MAX_LAG)
    median = float(np.median([c.lag for c in clips]))
    for clip in clips:
        clip.lag = round(clip.lag - median, 2)
    print("offsets (frames, relative to the corpus median): " + ", ".join(f"{c.name} {c.lag:+.2f}" for c in clips))


def cross_validate(clips, folds, basis, scale, mean, steps, save_to: Path | None = None) -> dict[str, dict[str, dict]]:
    """Leave-speakers-out scores per clip; each fold's network is saved to `save_to` (with the
    people it never saw) for the benchmarks that test personal adaptation on unseen people."""
    results: dict[str, dict[str, dict]] = {"ridge": {}, "network": {}}
    for number, fold in enumerate(folds):
        train = [c for c in clips if c.person not in fold]
        held = [c for c in clips if c.person in fold]
        t0 = time.perf_counter()
        ridge = train_ridge(train, basis, scale, mean)
        model = train_network(train, basis, scale, mean, steps)
        if save_to is not None:
            meta = {"held_out_people": sorted(fold), "held_out_clips": [c.name for c in held], "steps": steps}
            GenericLipModel(model.network, model.feature_mean, model.feature_std, basis, scale, mean, meta).save(save_to / f"fold{number + 1}.safetensors")
        for clip in held:
            results["ridge"][clip.name] = clip_scores(clip, ridge_predict(ridge, clip, basis, scale, mean))
            results["network"][clip.name] = clip_scores(clip, model.predict(clip.shifted_features()))
        mean_r = {k: np.mean([results[k][c.name]["r"] for c in held]) for k in results}
        print(f"fold {number + 1}/{len(folds)} ({len(fold)} people, {time.perf_counter() - t0:.0f} s): ridge r {mean_r['ridge']:.3f}, network r {mean_r['network']:.3f}", flush=True)
    return results


def summarise(results: dict[str, dict[str, dict]], clips: list[Clip]) -> dict:
    summary = {}
    for name, scores in results.items():
        rows = [scores[c.name] for c in clips if c.name in scores]
        values = {key: np.array([row[key] for row in rows], np.float64) for key in ("r", "amplitude", "closure")}
        summary[name] = {
            "mean_r": round(float(np.nanmean(values["r"])), 4),
            "worst_r": round(float(np.nanmin(values["r"])), 4),
            "mean_amplitude": round(float(np.nanmean(values["amplitude"])), 3),
            "worst_amplitude": round(float(values["amplitude"][np.nanargmax(np.abs(np.log(values["amplitude"])))]), 3),
            "mean_closure": round(float(np.nanmean(values["closure"])), 3),
        }
        print(f"{name}: {summary[name]}")
    return summary


def amplitude_gain(summary: dict) -> float:
    """The factor that makes zero-shot predictions open the mouth as wide as the real ones on
    average (leave-speakers-out); the amplitude term in the loss alone leaves them short."""
    return round(1.0 / summary["network"]["mean_amplitude"], 3)


def with_gain(model: GenericLipModel, gain: float, meta: dict) -> GenericLipModel:
    """The model with its output (lip-basis coefficients, centred on the corpus mean) scaled by `gain`."""
    with torch.no_grad():
        model.network.output.weight.mul_(gain)
        model.network.output.bias.mul_(gain)
    return GenericLipModel(model.network, model.feature_mean, model.feature_std, model.basis, model.scale, model.lip_mean, {**meta, "gain": gain})


def write_record(path: Path, meta: dict) -> None:
    """The human-readable training record beside the weights: command, clips, sources, licences."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from corpus import sources as corpus_sources

    sources = corpus_sources()
    lines = [
        "# generic_lips.safetensors", "",
        "The generic audio->lip network (`talkface/motion/generic.py`). Made with:", "",
        f"    {meta['command']}", "",
        f"Trained {meta['trained']} in {meta['seconds']} s on 2 CPU cores, {meta['steps']} steps; people never trained on: "
        f"{', '.join(meta['excluded_people'])}. Leave-speakers-out scores (before the output gain): "
        f"`{json.dumps(meta['cross_validation'])}`; output scaled by {meta.get('gain', 1.0)} (1 / the mean zero-shot amplitude).", "",
        "| clip | person | offset corrected (frames) | sha256 | source (licence) |", "|---|---|---|---|---|",
    ]
    for clip in meta["clips"]:
        source = sources.get(clip["file"], "../shared/data/video (see shared/data/SOURCES.md)")
        lines.append(f"| {clip['file']} | {clip['person']} | {clip['offset_frames']:+.2f} | {clip['sha256'][:16]}... | {source} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "out" / "corpus")
    parser.add_argument("--folds", type=int, default=6, help="leave-speakers-out folds (0: skip cross-validation)")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--exclude", nargs="*", default=["congressman_d"], help="people never trained on")
    parser.add_argument("--no-ship", action="store_true", help="cross-validate only")
    parser.add_argument("--results", type=Path, default=ROOT / "out" / "train_lips.json")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    clips = [c for c in load_clips(args.data) if c.person not in args.exclude]
    print(f"{len(clips)} clips, {len({c.person for c in clips})} people, {sum(int(c.valid.sum()) for c in clips)} frames")
    basis, scale, mean = lip_basis(clips)
    folds = folds_by_person(clips, max(args.folds, 4))
    estimate_lags(clips, folds, basis, scale, mean)
    record = {"lags": {c.name: c.lag for c in clips}}
    fold_folder = args.results.parent / "lips_folds"
    fold_folder.mkdir(parents=True, exist_ok=True)
    gain = 1.0
    if args.folds:
        results = cross_validate(clips, folds_by_person(clips, args.folds), basis, scale, mean, args.steps, fold_folder)
        record.update(per_clip=results, summary=summarise(results, clips))
        gain = amplitude_gain(record["summary"])
        for path in fold_folder.glob("fold*.safetensors"):  # the benchmarks use them as shipped
            fold = GenericLipModel.load(path)
            with_gain(fold, gain, fold.meta).save(path)
    args.results.write_text(json.dumps(record, indent=1))
    if args.no_ship:
        return
    model = train_network(clips, basis, scale, mean, args.steps, log=True)
    meta = {
        "trained": time.strftime("%Y-%m-%d"),
        "command": "python scripts/corpus.py && python scripts/train_lips.py " + " ".join(sys.argv[1:]),
        "steps": args.steps,
        "excluded_people": args.exclude,
        "clips": [{"file": c.name, "person": c.person, "sha256": c.sha256, "offset_frames": c.lag} for c in clips],
        "cross_validation": record.get("summary"),
        "seconds": round(time.perf_counter() - started),
    }
    model = with_gain(model, gain, meta)
    model.save(GENERIC_PATH)
    write_record(GENERIC_PATH.with_suffix(".md"), model.meta)  # with the gain
    print(f"wrote {GENERIC_PATH} ({GENERIC_PATH.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
