"""The CUDA path against the CPU one. Runs only where PyTorch sees a CUDA GPU (skipped elsewhere)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from talkface.config import FinetuneConfig, RefinerConfig
from talkface.finetune import finetune
from talkface.media import read_frames_at
from talkface.refine.networks import IN_CHANNELS, Generator
from talkface.render.rasterizer import rasterize_compiled, rasterize_vectorised
from talkface.speak import speak

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SMALL = RefinerConfig(crop_size=64, channels=(8, 8, 16, 16), steps=20, batch=4, learning_rate=2e-3, checkpoint_seconds=0.0)
RULES = FinetuneConfig(min_seconds=2.0, features="mfcc", use_generic=False)  # 3-s clip; runs without the Whisper weights


def test_vectorised_rasterizer_on_cuda_matches_the_compiled_one_on_cpu():
    rng = np.random.default_rng(7)
    vertices = torch.tensor(np.c_[rng.uniform(-5, 85, (300, 2)), rng.uniform(1, 2, 300)], dtype=torch.float32)
    triangles = torch.tensor(rng.integers(0, 300, (400, 3)))
    cpu = rasterize_compiled(vertices, triangles, (80, 64))
    gpu = rasterize_vectorised(vertices.cuda(), triangles.cuda(), (80, 64))
    assert gpu.triangle.device.type == "cuda" and cpu.mask.any()
    same = (gpu.triangle.cpu() == cpu.triangle).float().mean().item()
    assert same > 0.995  # a pixel exactly on a shared edge may go either way
    agree = (gpu.triangle.cpu() == cpu.triangle) & cpu.mask
    np.testing.assert_allclose(gpu.barycentric.cpu()[agree].numpy(), cpu.barycentric[agree].numpy(), atol=1e-4)


def test_generator_on_cuda_matches_the_cpu_one_and_bfloat16_stays_close():
    torch.manual_seed(0)
    generator = Generator((8, 16, 16, 32), n_residual=2).eval()
    for parameter in generator.out.parameters():  # a visible correction, not the near-zero start
        torch.nn.init.normal_(parameter, std=0.05)
    inputs = torch.rand(2, IN_CHANNELS, 64, 64) * 2 - 1
    with torch.inference_mode():
        expected = generator(inputs)
        on_gpu = copy.deepcopy(generator).cuda()
        torch.backends.cudnn.allow_tf32 = False
        try:
            float32 = on_gpu(inputs.cuda()).cpu()
        finally:
            torch.backends.cudnn.allow_tf32 = True
        bfloat16 = on_gpu.set_precision(True)(inputs.cuda()).cpu()
    np.testing.assert_allclose(float32.numpy(), expected.numpy(), atol=1e-4)
    assert (bfloat16 - expected).abs().mean() < 0.02 * expected.abs().mean()


def test_finetune_and_speak_run_on_cuda(clip, tmp_path):
    profile = finetune(clip, tmp_path / "p", RULES, refiner_config=SMALL, device="cuda")
    info = json.loads((profile.folder / "profile.json").read_text())
    assert info["refiner"]["steps"] == SMALL.steps
    assert info["refiner"]["validation"]["face_psnr_refined_db"] > 15
    spoken = speak(clip, tmp_path / "speak.mp4", profile, device="cuda")
    frame = read_frames_at(spoken.video, [30])[30]
    assert frame.shape == (450, 450, 3) and frame.std() > 10
