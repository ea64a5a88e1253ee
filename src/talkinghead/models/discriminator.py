"""Projection discriminator D(x, y, i): realism of a frame given its sketch, for training video i.

r = Vᵀ(W_i + w₀) + b, where V is the encoder's pooled output. W (one column per training video) is a
separate module (:class:`VideoEmbeddings`) so the trainer can synchronise its few touched rows across
processes instead of all-reducing the whole matrix; in fine-tuning the column is ê + w₀ of the new person.
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.embedder import DownEncoder


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = DownEncoder(cfg, extra_block=True)
        self.w0 = nn.Parameter(torch.zeros(cfg.embed_dim))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(
        self, frame: torch.Tensor, sketch: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``frame``, ``sketch`` ``(B, 3, S, S)`` in [-1, 1]; ``w`` ``(B, embed_dim)`` the videos' columns W_i.

        Returns the realism score ``(B,)`` and the intermediate feature maps (for feature matching).
        """
        feats: list[torch.Tensor] = []
        v = self.encoder(torch.cat([frame, sketch], dim=1), feats)
        return (v * (w + self.w0)).sum(dim=1) + self.b, feats


class VideoEmbeddings(nn.Module):
    """W: one ``embed_dim`` column per training video (stored as rows), initialised like the paper's N(0, ·)."""

    def __init__(self, n_videos: int, embed_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_videos, embed_dim) * 0.02)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.weight[index]
