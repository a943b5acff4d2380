"""Distillation losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float = 1.0) -> torch.Tensor:
    """``KL(softmax(t/T) || softmax(s/T)) * T²``, averaged over the batch (Hinton et al.)."""
    teacher_probs = F.softmax(teacher_logits / temperature, dim=-1)
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(student_log_probs, teacher_probs, reduction="batchmean") * temperature**2


def mixed_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
               temperature: float = 1.0, alpha: float = 0.0) -> torch.Tensor:
    """``(1 - α)·KD + α·CE`` where CE uses only the examples that have a true label (``labels >= 0``)."""
    loss = distillation_loss(student_logits, teacher_logits, temperature)
    known = labels >= 0
    if alpha > 0 and known.any():
        loss = (1 - alpha) * loss + alpha * F.cross_entropy(student_logits[known], labels[known])
    return loss


def representation_loss(projected: torch.Tensor, target: torch.Tensor, distance: str = "cosine") -> torch.Tensor:
    """Distance between projected student vectors and teacher vectors ``[N, H_t]``, averaged over rows.

    ``mse``: mean squared error over every element; ``cosine``: ``1 - cos(projected, target)``.
    """
    if distance == "mse":
        return F.mse_loss(projected, target)
    if distance == "cosine":
        return (1 - F.cosine_similarity(projected, target, dim=-1)).mean()
    raise ValueError(f"unknown distance {distance!r}")

