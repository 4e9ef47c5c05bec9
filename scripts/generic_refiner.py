"""Pretrain the refiner across the corpus's people: the start every finetune adapts from.

Usage: python scripts/generic_refiner.py [--work out/generic_refiner] [--steps 1600] [--only NAME ...]

1. prepare: for every clip in ../shared/data/corpus but those of the people the benchmarks hold
   out (HELD_OUT), its first SECONDS are tracked and reconstructed, the person's eye memory kept,
   and every clip frame rendered onto itself exactly as `finetune` renders its training pairs
   (talkface.refine.train.prepare_pairs); every `KEEP_EVERY`-th pair is stored, one `.npz` per
   clip, so an interrupted run resumes.
2. train: one generator and its two critics trained on the pairs of all clips (each batch drawn
   from distinct clips), with the standard preset's losses and sizes; the weights (the averaged
   generator and both critics) are written to talkface/weights/generic_refiner.safetensors with
   the clips and command recorded in generic_refiner.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from talkface.config import FPS, REFINER_PRESETS  # noqa: E402
from talkface.media import read_frames  # noqa: E402
from talkface.media.video import read_frames_from, write_video  # noqa: E402
from talkface.refine.generic import GENERIC_REFINER_PATH  # noqa: E402
from talkface.refine.train import PairSet, RefinerTrainer, prepare_pairs  # noqa: E402
from talkface.render.eyes import EyeMemory  # noqa: E402
from talkface.track import track  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "corpus"
# people whose numbers the benchmarks report (realism: the news anchor; follow: the German man,
# the Chinese vlogger, the bald man); Obama and the congressmen are not in the corpus
HELD_OUT = ("jim_acosta_cnn_dfrf_cnn2", "german_man_newsdesk_mimictalk_german20s", "chinese_woman_vlog_joygen_example15s", "bald_man_capitol_infinitetalk_ref_video")
SECONDS = 10  # of each clip, from its start
KEEP_EVERY = 2  # frames: neighbours are near copies


def corpus_clips() -> list[dict]:
    with open(CORPUS / "SOURCES.tsv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [row for row in rows if Path(row["file"]).stem not in HELD_OUT]


def prepare(row: dict, work: Path) -> Path | None:
    """The clip's stored pairs (npz), made once."""
    name = Path(row["file"]).stem
    out = work / "pairs" / f"{name}.npz"
    if out.exists():
        return out
    folder = work / "clips" / name
    folder.mkdir(parents=True, exist_ok=True)
    excerpt = folder / "excerpt.mp4"
    if not excerpt.exists():
        frames = (frame for _, frame in itertools.islice(read_frames_from(CORPUS / row["file"], 0), SECONDS * FPS))
        write_video(excerpt, frames, FPS, None, crf=16)
    tracked = track(excerpt, folder, overlay=False)
    fit = tracked.fit
    if int(fit.valid.sum()) < 50:
        print(f"{name}: only {int(fit.valid.sum())} tracked frames; skipped")
        return None
    eyes = EyeMemory.build(tracked.model, fit.expression, fit.pose, fit.valid, read_frames(excerpt))
    config = REFINER_PRESETS["standard"]
    pairs, _ = prepare_pairs(tracked.model, fit, read_frames(excerpt), config, len(fit.pose), "cpu", (eyes,))
    keep = np.arange(0, len(pairs.frames), KEEP_EVERY)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{f.name: getattr(pairs, f.name)[keep] for f in fields(pairs)})
    return out


def load_all(paths: list[Path]) -> tuple[PairSet, np.ndarray]:
    """Every clip's pairs in one PairSet, and each pair's clip number."""
    parts = [dict(np.load(path)) for path in paths]
    merged = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    clip = np.concatenate([np.full(len(part["frames"]), index) for index, part in enumerate(parts)])
    return PairSet(**merged), clip


def train(pairs: PairSet, clip: np.ndarray, steps: int, work: Path) -> RefinerTrainer:
    config = replace(REFINER_PRESETS["standard"], steps=steps, check_every=0, precision="auto")
    torch.manual_seed(0)
    trainer = RefinerTrainer(config, "cpu")
    rng = np.random.default_rng(0)
    by_clip = [np.flatnonzero(clip == index) for index in range(clip.max() + 1)]
    started = time.perf_counter()
    checkpoint = work / "checkpoint.safetensors"
    if trainer.resume(checkpoint, "generic"):
        print(f"resumed at step {trainer.step}")
    while trainer.step < steps:
        rng = np.random.default_rng([1, trainer.step])
        chosen = rng.choice(len(by_clip), size=config.batch, replace=False)
        rows = np.array([rng.choice(by_clip[index]) for index in chosen])
        losses = trainer.train_step(pairs, rows, rng)
        if trainer.step % 50 == 0:
            print(f"step {trainer.step}/{steps} ({time.perf_counter() - started:.0f} s): " + " ".join(f"{k} {v:.3f}" for k, v in losses.items()), flush=True)
            trainer.save(checkpoint, "generic")
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "generic_refiner")
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--only", nargs="*", help="clip names (stems) to use")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    rows = [row for row in corpus_clips() if not args.only or Path(row["file"]).stem in args.only]
    paths, used = [], []
    for index, row in enumerate(rows):
        started = time.perf_counter()
        try:
            path = prepare(row, args.work)
        except Exception as error:  # a clip the tracker cannot use is left out, and said
            print(f"{row['file']}: {type(error).__name__}: {error}; skipped")
            continue
        if path is not None:
            paths.append(path)
            used.append(row)
        print(f"[{index + 1}/{len(rows)}] {row['file']} ({time.perf_counter() - started:.0f} s)", flush=True)
    if args.prepare_only:
        return
    pairs, clip = load_all(paths)
    print(f"{len(pairs.frames)} pairs from {len(paths)} clips")
    started = time.perf_counter()
    trainer = train(pairs, clip, args.steps, args.work)
    tensors = {}
    for name, module in (("generator", trainer.kept), ("frame_critic", trainer.frame_critic), ("mouth_critic", trainer.mouth_critic)):
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    command = "python scripts/generic_refiner.py " + " ".join(sys.argv[1:])
    meta = {"steps": str(args.steps), "clips": str(len(paths)), "pairs": str(len(pairs.frames)), "channels": json.dumps(trainer.config.channels), "command": command.strip()}
    save_file(tensors, str(GENERIC_REFINER_PATH), meta)
    write_record(used, args, len(pairs.frames), time.perf_counter() - started)


def write_record(rows: list[dict], args, n_pairs: int, seconds: float) -> None:
    lines = [
        "# generic_refiner.safetensors",
        "",
        "The refiner every `finetune` starts from (`talkface/refine/generic.py`): the averaged generator and the two critics,",
        "pretrained on the corpus's people with the standard preset's sizes and losses. Made with:",
        "",
        f"    python scripts/generic_refiner.py --steps {args.steps}",
        "",
        f"Made {time.strftime('%Y-%m-%d')} from {len(rows)} clips (the first {SECONDS} s of each, every {KEEP_EVERY}nd frame: {n_pairs} pairs), "
        f"{args.steps} steps in {seconds / 60:.0f} min on 2 CPU cores. People left out (the benchmarks report them): {', '.join(HELD_OUT)}; "
        "Obama and the congressmen of ../shared/data/video are not in the corpus.",
        "",
        "| clip | person | sha256 | source (licence) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        digest = hashlib.sha256((CORPUS / row["file"]).read_bytes()).hexdigest()[:16]
        person = row["person"].split(",")[0].split("(")[0].strip()
        lines.append(f"| {Path(row['file']).stem} | {person} | {digest}... | {row['repo']} @ {row['commit'][:10]} : {row['path']} ({row['repo_licence']}) |")
    GENERIC_REFINER_PATH.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
