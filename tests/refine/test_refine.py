"""The GAN refiner: crops, memory, networks, a tiny training run end to end, checkpoint resume."""

from __future__ import annotations

import dataclasses

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from talkface.config import FinetuneConfig, RefinerConfig
from talkface.errors import InputError
from talkface.finetune import finetune
from talkface.media import read_frames, read_frames_at
from talkface.refine.crop import edge_taper, face_crop
from talkface.refine.memory import MouthMemory, mouth_keys
from talkface.refine.model import Refiner
from talkface.refine.networks import Generator, PatchDiscriminator, ssim_loss
from talkface.refine.train import CHECKPOINT, RefinerTrainer, prepare_pairs, train_refiner
from talkface.output import render_frames
from talkface.speak import speak

TINY = RefinerConfig(crop_size=64, channels=(8, 8, 16, 16), steps=6, batch=2, learning_rate=2e-3, checkpoint_seconds=0.0)
RULES = FinetuneConfig(min_seconds=2.0)  # the shipped test clip is 3 s


@pytest.fixture(scope="module")
def coarse_profile(clip, tmp_path_factory):
    return finetune(clip, tmp_path_factory.mktemp("coarse"), replace(RULES, refiner=False))


@pytest.fixture(scope="module")
def pairs(coarse_profile, clip):
    n_train = 60
    built, memory = prepare_pairs(coarse_profile.face, coarse_profile.clip_fit, read_frames(clip), TINY, n_train)
    return built, memory, n_train


def test_face_crop_is_upright_and_never_enlarges(coarse_profile):
    from talkface.face.model import place_vertices

    fit = coarse_profile.clip_fit
    vertices = place_vertices(coarse_profile.face, fit.expression[0], fit.pose[0])
    small = face_crop(vertices, 64)  # smaller than the face: the lower face, scaled down
    eyes = small.points(vertices[[33, 263]])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.5  # eye line horizontal
    lower_face = small.points(vertices[[61, 291, 13, 14, 152]])  # mouth corners, lips, chin
    assert np.all((lower_face > 0) & (lower_face < 64))
    assert np.linalg.det(small.matrix[:, :2]) < 1
    assert np.isclose(np.linalg.det(face_crop(vertices, 256).matrix[:, :2]), 1.0)  # room for the lower face
    big = face_crop(vertices, 4096)  # room for everything: never enlarged, the whole face inside
    assert np.isclose(np.linalg.det(big.matrix[:, :2]), 1.0)
    points = big.points(vertices[:468])
    assert np.all((points > 0) & (points < 4096))


def test_pasting_a_zero_difference_changes_nothing_and_edges_fade(coarse_profile, clip_frames):
    from talkface.face.model import place_vertices

    fit = coarse_profile.clip_fit
    crop = face_crop(place_vertices(coarse_profile.face, fit.expression[0], fit.pose[0]), 64)
    frame = clip_frames[0]
    assert np.array_equal(crop.paste_difference(frame, np.zeros((64, 64, 3), np.float32)), frame)
    taper = edge_taper(64)
    assert taper[0].max() == 0 and taper[:, 0].max() == 0 and taper[32, 32] == 1
    brighter = crop.paste_difference(frame, np.full((64, 64, 3), 40, np.float32))
    changed = np.abs(brighter.astype(int) - frame).sum(-1) > 0
    assert 0 < changed.mean() < 0.5  # only around the face


def test_memory_read_finds_the_matching_mouth_and_respects_the_exclusion_window():
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(30, 80)).astype(np.float32)
    lips = np.tile(rng.uniform(20, 40, size=(1, 40, 2)), (30, 1, 1))
    crops = np.stack([np.full((64, 64, 3), 8 * i, np.uint8) for i in range(30)])
    memory = MouthMemory.build(keys, lips, np.arange(30), crops, exclude_window=2)
    read = memory.read(keys[[7]], lips[[7]], k=1)
    assert np.allclose(read[0, 32, 32], 56, atol=1)
    excluded = memory.read(keys[[7]], lips[[7]], k=1, frames=np.array([7]), exclude_window=2)
    assert not np.allclose(excluded[0, 32, 32], 56, atol=1)


def test_memory_round_trips_through_its_file(pairs, tmp_path):
    _, memory, _ = pairs
    memory.save(tmp_path / "m.npz")
    loaded = MouthMemory.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.keys, memory.keys) and loaded.temperature == memory.temperature
    assert np.abs(loaded.crops.astype(int) - memory.crops).mean() < 3  # JPEG


def test_mouth_keys_ignore_head_pose_and_follow_the_mouth(coarse_profile):
    fit = coarse_profile.clip_fit
    keys = mouth_keys(coarse_profile.face, fit.expression)
    assert keys.shape == (len(fit.expression), 80)
    assert np.std(keys, 0).max() > 0


def test_networks_shapes_and_ssim():
    generator = Generator((8, 8, 16, 16))
    out = generator(torch.zeros(2, 11, 64, 64))
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    features = PatchDiscriminator(3)(torch.zeros(1, 3, 64, 64))
    assert features[-1].shape == (1, 1, 8, 8)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert ssim_loss(image, image) < 1e-5 < ssim_loss(image, -image)


def test_a_channels_last_generator_refines_as_the_plain_one(refined_profile):
    """Inference stores the generator channels-last on a CPU (faster there), in float32 as asked:
    the same picture as the plain layout; training's networks keep theirs."""
    torch.manual_seed(0)
    plain = Generator((8, 8, 16, 16)).eval()
    plain.out.weight.data.normal_(std=0.1)  # a correction that is not near zero
    fast = Generator((8, 8, 16, 16)).eval()
    fast.load_state_dict(plain.state_dict())
    fast.set_precision(False, channels_last=True)
    inputs = torch.rand(3, 11, 64, 64) * 2 - 1
    with torch.inference_mode():
        expected, got = plain(inputs), fast(inputs)
    assert fast.enc0[0].weight.is_contiguous(memory_format=torch.channels_last) and not fast.bfloat16
    assert (expected - inputs[:, :3]).abs().mean() > 0.01 and torch.allclose(got, expected, atol=1e-5)
    loaded = Refiner.load(refined_profile.folder, "cpu", precision="fp32").generator
    assert loaded.channels_last and not loaded.bfloat16
    assert not RefinerTrainer(RefinerConfig(crop_size=64, channels=(8, 8, 16, 16), precision="fp32")).generator.channels_last


def test_pairs_render_each_frame_onto_itself(pairs):
    built, memory, n_train = pairs
    assert built.rendered.shape == (75, 64, 64, 3) and built.real.shape == built.rendered.shape
    assert np.all(memory.frames < n_train) and len(memory.frames) == n_train
    # outside the face the coarse render is the real frame itself
    outside = built.coverage < 10
    assert np.abs(built.rendered.astype(int) - built.real)[outside].mean() < 2


def test_training_resumes_from_a_checkpoint_to_the_same_weights(pairs, tmp_path):
    built, memory, n_train = pairs
    whole = tmp_path / "whole"
    whole.mkdir()
    train_refiner(built, memory, n_train, TINY, whole, "key", "tiny")
    split = tmp_path / "split"
    split.mkdir()
    assert train_refiner(built, memory, n_train, TINY, split, "key", "tiny", max_steps=3) == {}
    assert (split / CHECKPOINT).exists() and not Refiner.exists(split)
    summary = train_refiner(built, memory, n_train, TINY, split, "key", "tiny")
    assert summary["steps"] == TINY.steps and not (split / CHECKPOINT).exists()
    a, b = Refiner.load(whole).generator.state_dict(), Refiner.load(split).generator.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_a_run_started_from_the_generic_refiner_resumes_from_its_checkpoint(pairs, tmp_path):
    # killed after a few steps, a warm-started run goes on from its own checkpoint (not from the
    # generic refiner again) and ends with the weights of a run never stopped
    from talkface.refine.generic import fits

    built, memory, n_train = pairs
    warm = dataclasses.replace(TINY, channels=RefinerConfig().channels, warm_start=True)
    assert fits(warm.channels), "the shipped generic refiner has the default widths"
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir()
    split.mkdir()
    assert train_refiner(built, memory, n_train, warm, whole, "key", "warm")["started_from"] == "generic"
    assert train_refiner(built, memory, n_train, warm, split, "key", "warm", max_steps=3) == {}
    summary = train_refiner(built, memory, n_train, warm, split, "key", "warm")
    assert summary["steps"] == warm.steps and summary["started_from"] == "generic"
    a, b = Refiner.load(whole).generator.state_dict(), Refiner.load(split).generator.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_training_stops_early_when_the_held_out_psnr_stops_rising(pairs, tmp_path):
    """With a learning rate too small to change anything, the held-out PSNR is flat: training
    ends after `patience` checks without gain, and the refiner is written whole."""
    built, memory, n_train = pairs
    flat = dataclasses.replace(TINY, steps=50, learning_rate=1e-12, check_every=2, patience=2, min_steps=2, min_gain_db=0.01)
    summary = train_refiner(built, memory, n_train, flat, tmp_path, "key", "tiny")
    assert summary["stopped_early"] and summary["steps"] == 6
    assert [step for step, _ in summary["held_out_checks"]] == [2, 4, 6]
    assert Refiner.exists(tmp_path) and not (tmp_path / CHECKPOINT).exists()
    # without patience it runs every step
    (tmp_path / "all").mkdir()
    assert train_refiner(built, memory, n_train, dataclasses.replace(flat, steps=8, patience=0), tmp_path / "all", "key", "tiny")["steps"] == 8


def test_first_checkpoint_comes_at_once_and_sigterm_saves(pairs, tmp_path, monkeypatch):
    built, memory, n_train = pairs
    hourly = dataclasses.replace(TINY, checkpoint_seconds=3600.0)
    seen_during_training = []

    def terminated_on_the_third(self, *args):  # SIGTERM arrives through the CLI handler as SystemExit
        seen_during_training.append((tmp_path / CHECKPOINT).exists())
        if len(seen_during_training) == 3:
            raise SystemExit(143)
        self.step += 1
        return {"l1": 0.0}

    monkeypatch.setattr(RefinerTrainer, "train_step", terminated_on_the_third)
    with pytest.raises(SystemExit):
        train_refiner(built, memory, n_train, hourly, tmp_path, "key", "tiny")
    assert seen_during_training == [False, True, True], "a run killed in its first hour keeps its first step"
    resumed = RefinerTrainer(hourly)
    assert resumed.resume(tmp_path / CHECKPOINT, "key") and resumed.step == 2


def test_a_checkpoint_for_other_inputs_or_a_damaged_one_is_not_resumed(pairs, tmp_path):
    built, memory, n_train = pairs
    train_refiner(built, memory, n_train, TINY, tmp_path, "key", "tiny", max_steps=2)
    assert not RefinerTrainer(TINY).resume(tmp_path / CHECKPOINT, "other key")
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    trainer = RefinerTrainer(TINY)
    assert not trainer.resume(tmp_path / CHECKPOINT, "key") and trainer.step == 0


@pytest.fixture(scope="module")
def refined_profile(clip, tmp_path_factory):
    return finetune(clip, tmp_path_factory.mktemp("refined") / "p", RULES, refiner_config=TINY)


def test_finetune_trains_the_refiner_and_speak_uses_it(clip, refined_profile, tmp_path):
    profile = refined_profile
    assert profile.has_refiner
    info = json.loads((profile.folder / "profile.json").read_text())
    validation = info["refiner"]["validation"]
    assert info["refiner"]["steps"] == TINY.steps and validation["frames"] > 0
    assert validation["face_psnr_refined_db"] > 10
    spoken = speak(clip, tmp_path / "refined.mp4", profile)
    assert read_frames_at(spoken.video, [30])[30].shape == (450, 450, 3)
    motion = spoken.motion
    refined = list(render_frames(profile, motion, refine=True))
    coarse = list(render_frames(profile, motion, refine=False))
    assert len(refined) == len(coarse) == motion.n_frames
    changed = np.mean([np.abs(a.astype(int) - b).sum(-1) > 0 for a, b in zip(refined, coarse)], 0)
    assert 0 < (changed > 0).mean() < 0.3  # the refiner changed the face region, not the whole frame
    assert changed[:40].max() == 0 and changed[-40:].max() == 0  # top and bottom of the frame untouched
    # a rerun reuses the trained refiner
    stamp = (profile.folder / "refiner.safetensors").stat().st_mtime_ns
    finetune(clip, profile.folder, RULES, refiner_config=TINY)
    assert (profile.folder / "refiner.safetensors").stat().st_mtime_ns == stamp


def test_unknown_preset_is_refused_before_any_work(clip, tmp_path):
    with pytest.raises(InputError, match="unknown refiner preset 'fast'.*draft, standard, best"):
        finetune(clip, tmp_path / "p", replace(RULES, preset="fast"))
    assert not (tmp_path / "p").exists()


def test_refined_difference_leaves_the_kept_skin_alone(pairs, coarse_profile, clip_frames, tmp_path):
    import cv2

    from talkface.face.model import place_vertices
    from talkface.render.composite import FaceCompositor

    built, memory, n_train = pairs
    train_refiner(built, memory, n_train, TINY, tmp_path, "key", "tiny")
    refiner = Refiner.load(tmp_path)
    with torch.no_grad():  # a refiner that changes every pixel of its crop, so leaving some alone shows
        refiner.generator.out.bias += 0.2
    face, fit, index = coarse_profile.face, coarse_profile.clip_fit, 10
    vertices = place_vertices(face, fit.expression[index], fit.pose[index])
    frame, coverage, kept = FaceCompositor(face).composite_keeping(clip_frames[index], vertices, vertices)
    assert kept.max() > 0.99 and kept[np.round(vertices[13, 1]).astype(int), np.round(vertices[13, 0]).astype(int)] == 0  # the lips are not kept
    free = refiner.refine_prepared([frame], [refiner.prepare(face, frame, frame, coverage, vertices, fit.expression[index])])[0]
    held = refiner.refine_prepared([frame], [refiner.prepare(face, frame, frame, coverage, vertices, fit.expression[index], kept)])[0]
    whole = cv2.erode((kept > 0.999).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert whole.sum() > 100
    assert np.abs(held.astype(int) - frame)[whole].max() <= 1  # the frame's own skin, untouched
    assert np.abs(free.astype(int) - frame)[whole].max() > 1  # which the refiner would have changed
    lips = kept == 0
    mouth = lips & (coverage > 0.99)
    assert np.abs(held.astype(int) - free)[mouth].max() <= 1 and np.abs(free.astype(int) - frame)[mouth].max() > 1  # the mouth refined as before


def test_a_stream_is_refined_in_batches_in_order_and_passes_frames_on(pairs, coarse_profile, clip_frames, tmp_path):
    """speak's and dub's one batching loop: frames keep their order and their tags, a frame with
    nothing prepared comes back untouched, and every refined frame is what refining it alone gives."""
    from talkface.face.model import place_vertices
    from talkface.refine.model import BATCH
    from talkface.render.composite import FaceCompositor

    built, memory, n_train = pairs
    train_refiner(built, memory, n_train, TINY, tmp_path, "key", "tiny")
    refiner = Refiner.load(tmp_path)
    face, fit = coarse_profile.face, coarse_profile.clip_fit
    compositor = FaceCompositor(face)
    items = []
    for index in range(BATCH + 3):
        if index == 4:  # a frame that is not the person's: passed on between two batches
            items.append((clip_frames[index], None, "passed"))
            continue
        vertices = place_vertices(face, fit.expression[index], fit.pose[index])
        frame, coverage = compositor.composite(clip_frames[index], vertices)
        items.append((frame, refiner.prepare(face, frame, frame, coverage, vertices, fit.expression[index]), index))
    out = list(refiner.refine_stream(iter(items)))
    assert [tag for _, tag in out] == [tag for _, _, tag in items]
    assert out[4][0] is items[4][0]
    for (image, _), (frame, ready, _) in zip(out, items):
        if ready is not None:
            alone = refiner.refine_prepared([frame], [ready])[0]
            assert np.abs(image.astype(int) - alone).max() <= 1 and np.abs(image.astype(int) - frame).max() > 0
    assert list(refiner.refine_stream(iter(()))) == []


@pytest.mark.parametrize("summary", ["", "{", "0", "[]", '"refiner"', "null", '{"format": 1}', '{"format": 1, "config": 3}'])
def test_a_damaged_refiner_summary_is_a_clear_error(pairs, tmp_path, summary):
    """refiner.json emptied, cut, or JSON of another kind (a number, a list: not an object) or missing
    its fields: one CacheError naming the fix, never an AttributeError or KeyError."""
    from talkface.errors import CacheError
    from talkface.refine.model import SUMMARY

    built, memory, n_train = pairs
    train_refiner(built, memory, n_train, TINY, tmp_path, "key", "tiny")
    assert Refiner.load(tmp_path).summary["config"]["crop_size"] == TINY.crop_size
    (tmp_path / SUMMARY).write_text(summary)
    with pytest.raises(CacheError, match="run finetune again"):
        Refiner.load(tmp_path)


@pytest.mark.parametrize("name", ["refiner.safetensors", "refiner_memory.npz", "refiner.json", "frames.npz"])
def test_a_damaged_weights_file_is_the_profiles_own_error(refined_profile, clip_audio, tmp_path, name):
    """A profile file cut in half (a copy interrupted, a full disk): the profile's error naming the
    file and the finetune ... --force that rebuilds it, in one line, never an internal error."""
    import shutil
    import subprocess
    import sys

    from talkface.errors import ProfileError
    from talkface.media import Audio, write_audio

    folder = tmp_path / "p"
    shutil.copytree(refined_profile.folder, folder)
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    line = write_audio(tmp_path / "line.wav", Audio(clip_audio.samples[:16000], clip_audio.sample_rate))
    with pytest.raises(ProfileError, match=f"{name}|the refiner in") as caught:
        speak(line, tmp_path / "o.mp4", folder)
    assert f"finetune --video {refined_profile.info.source.path} --out {folder} --force" in str(caught.value)
    done = subprocess.run(
        [sys.executable, "-m", "talkface", "speak", "--audio", str(line), "--out", str(tmp_path / "o.mp4"), "--person", str(folder)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and "ProfileError" in done.stderr and "--force" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.mp4").exists()
