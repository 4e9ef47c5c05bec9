"""Choosing the compute device: --device auto|cpu|cuda."""

from __future__ import annotations

import os

from talkface.errors import DependencyError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> str:
    """Turn a device request into 'cpu' or 'cuda'.

    Raises:
        DependencyError: 'cuda' was asked for but PyTorch sees no CUDA device.
    """
    if name not in DEVICES:
        raise DependencyError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    import torch

    has_cuda = torch.cuda.is_available()
    if name == "cuda" and not has_cuda:
        raise DependencyError(
            "--device cuda was asked for but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}); use --device cpu, or install a CUDA build of torch"
        )
    if name == "auto":
        return "cuda" if has_cuda else "cpu"
    return name


PRECISIONS = ("auto", "fp32", "bf16")


def use_bfloat16(device: str, precision: str = "auto") -> bool:
    """Whether networks on `device` run their convolutions in bfloat16 (float32 elsewhere).

    'auto' picks bfloat16 where the hardware computes it natively (CPUs with AMX or AVX-512
    BF16, CUDA GPUs that support it), where it is about twice as fast; emulated bfloat16 on
    other CPUs would be slower than float32. The environment variable TALKFACE_PRECISION
    (fp32 or bf16) overrides 'auto'.
    """
    if precision == "auto":
        precision = os.environ.get("TALKFACE_PRECISION", "auto") or "auto"
    if precision not in PRECISIONS:
        raise DependencyError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision == "bf16"
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    return bool(cpu and (getattr(cpu, "_is_amx_tile_supported", lambda: False)() or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()))
