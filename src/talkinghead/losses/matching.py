"""Feature matching and embedding match."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def feature_matching(fake_feats: Sequence[torch.Tensor], real_feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over the discriminator's blocks of the L1 distance between fake and (detached) real features."""
    losses = [F.l1_loss(f, r.detach()) for f, r in zip(fake_feats, real_feats, strict=True)]
    return torch.stack(losses).mean()


def embedding_match(w: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """‖W_i − ê_i‖₁ averaged over the batch (and the embedding's entries): ``(B, D)`` each."""
    return F.l1_loss(w, e)
