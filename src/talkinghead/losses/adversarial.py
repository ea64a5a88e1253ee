"""Hinge adversarial losses (Lim & Ye 2017; the paper's L_ADV and L_DSC)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_hinge(fake_score: torch.Tensor) -> torch.Tensor:
    """-D(x̂), averaged over the batch."""
    return -fake_score.mean()


def discriminator_hinge(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """max(0, 1 + D(x̂)) + max(0, 1 - D(x)), averaged over the batch."""
    return F.relu(1.0 + fake_score).mean() + F.relu(1.0 - real_score).mean()
