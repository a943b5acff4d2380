"""Seeds that depend only on ``(seed, epoch)``: the same on every DDP rank and after a resume."""

from __future__ import annotations

import torch


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A fresh random generator for one epoch's draws."""
    return torch.Generator().manual_seed(epoch_seed(seed, epoch))
