"""Argument types shared by the ``python -m overparam`` sub-commands: a bad value is a one-line usage error."""
from __future__ import annotations

import argparse

import torch

__all__ = ["device_name", "positive_int"]


def positive_int(text: str) -> int:
    """An integer >= 1 (``--threads``, ``--eval-every``)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def device_name(text: str) -> str:
    """A torch device this machine has: ``cpu``, ``cuda`` or ``cuda:K`` (``auto`` is left for the command)."""
    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:K, got {text!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:K, got {text!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees no CUDA device on this machine; use cpu")
    return text
