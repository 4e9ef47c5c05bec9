"""Choosing the compute device: --device auto|cpu|cuda."""

from __future__ import annotations

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
