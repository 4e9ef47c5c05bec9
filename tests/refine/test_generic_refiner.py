"""The refiner pretrained across the corpus (talkface/weights/generic_refiner.safetensors): it
refines a face it never saw (Obama is held out of it), and finetune starts from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from talkface.config import REFINER_PRESETS, FinetuneConfig
from talkface.errors import CacheError
from talkface.finetune import finetune
from talkface.media import read_frames
from talkface.refine.generic import GENERIC_REFINER_PATH, fits, generic_refiner_meta, load_generic_refiner
from talkface.refine.train import RefinerTrainer, prepare_pairs, train_refiner, validate

STANDARD = REFINER_PRESETS["standard"]
RULES = FinetuneConfig(min_seconds=2.0, refiner=False)  # the shipped test clip is 3 s


@pytest.fixture(scope="module")
def pairs(clip, tmp_path_factory):
    profile = finetune(clip, tmp_path_factory.mktemp("coarse"), RULES)
    n_train = 60
    built, memory = prepare_pairs(profile.face, profile.clip_fit, read_frames(clip), STANDARD, n_train)
    return built, memory, n_train


def test_the_generic_refiner_is_shipped_with_its_record():
    meta = generic_refiner_meta()
    assert meta is not None and int(meta["clips"]) >= 40 and int(meta["steps"]) >= 1000
    assert fits(STANDARD.channels) and fits(REFINER_PRESETS["draft"].channels)
    assert not fits(REFINER_PRESETS["best"].channels)  # wider: trained from nothing
    record = GENERIC_REFINER_PATH.with_suffix(".md").read_text(encoding="utf-8")
    assert "scripts/generic_refiner.py" in record and "barack_obama" not in record.lower()


def test_it_refines_a_face_it_never_saw(pairs):
    """Untrained on this person, it already brings the coarse render nearer the real frames."""
    built, _, _ = pairs
    trainer = RefinerTrainer(STANDARD)
    load_generic_refiner(trainer._modules())
    scores = validate(trainer.kept, built, np.arange(len(built.frames)), trainer.device)
    assert scores["face_psnr_refined_db"] > scores["face_psnr_coarse_db"] + 0.3
    untrained = validate(RefinerTrainer(STANDARD).kept, built, np.arange(len(built.frames)), trainer.device)
    assert abs(untrained["face_psnr_refined_db"] - untrained["face_psnr_coarse_db"]) < 0.2  # from nothing: the render passed on


def test_finetune_starts_from_it_and_says_so(pairs, tmp_path):
    built, memory, n_train = pairs
    two = replace(STANDARD, steps=2, batch=2, check_every=0)
    summaries = {}
    for name, config in (("warm", two), ("cold", replace(two, warm_start=False))):
        (tmp_path / name).mkdir()
        summaries[name] = train_refiner(built, memory, n_train, config, tmp_path / name, "key", "standard")
    warm, cold = summaries["warm"], summaries["cold"]
    assert warm["started_from"] == "generic" and cold["started_from"] == "nothing"
    assert warm["validation"]["face_psnr_refined_db"] > cold["validation"]["face_psnr_refined_db"] + 0.3


def test_a_damaged_or_misshapen_generic_refiner_is_a_clear_error(tmp_path):
    trainer = RefinerTrainer(STANDARD)
    damaged = tmp_path / "generic.safetensors"
    for content in (GENERIC_REFINER_PATH.read_bytes()[:5000], b"", b"not a safetensors file"):  # truncated, empty, another file
        damaged.write_bytes(content)
        with pytest.raises(CacheError, match="cannot be read.*reinstall"):
            load_generic_refiner(trainer._modules(), damaged)
        with pytest.raises(CacheError, match="cannot be read.*reinstall"):
            generic_refiner_meta(damaged)
    assert generic_refiner_meta(tmp_path / "missing.safetensors") is None and not fits(STANDARD.channels, tmp_path / "missing.safetensors")
    wide = RefinerTrainer(REFINER_PRESETS["best"])
    with pytest.raises(CacheError, match="does not fit"):
        load_generic_refiner(wide._modules())
