"""Embedder E(x, y): frames and their landmark sketches → a person embedding ê (the mean over K frames)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.blocks import ResBlockDown, SelfAttention, down_channels, sn_conv


class DownEncoder(nn.Module):
    """Residual downsampling blocks from a 6-channel input to 4x4, self-attention at ``attention_res``,
    then ReLU and global sum pooling to ``embed_dim`` (shared by the embedder and the discriminator)."""

    def __init__(self, cfg: ModelConfig, extra_block: bool = False) -> None:
        super().__init__()
        chans = down_channels(cfg.width, cfg.encoder_downs)
        chans[-1] = cfg.embed_dim
        layers: list[nn.Module] = []
        cin, res = 6, cfg.resolution
        for i, c in enumerate(chans):
            layers.append(ResBlockDown(cin, c, first=i == 0))
            cin, res = c, res // 2
            if res == cfg.attention_res:
                layers.append(SelfAttention(c))
        self.blocks = nn.ModuleList(layers)
        self.extra = ExtraBlock(cin) if extra_block else None

    def forward(self, x: torch.Tensor, features: list[torch.Tensor] | None = None) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
            if features is not None:
                features.append(h)
        if self.extra is not None:
            h = self.extra(h)
            if features is not None:
                features.append(h)
        return F.relu(h).sum(dim=(2, 3))


class ExtraBlock(nn.Module):
    """A residual block at 4x4 without normalisation (the discriminator's last block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = sn_conv(channels, channels), sn_conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Embedder(nn.Module):
    """``forward(frames, sketches)``: ``(B, K, 3, S, S)`` each, in [-1, 1] → ê ``(B, embed_dim)`` (mean over K)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = DownEncoder(cfg)

    def embed_frames(self, frames: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        """Per-frame embeddings: ``(N, 3, S, S)`` x2 → ``(N, embed_dim)``."""
        return self.encoder(torch.cat([frames, sketches], dim=1))

    def forward(self, frames: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        b, k = frames.shape[:2]
        e = self.embed_frames(frames.flatten(0, 1), sketches.flatten(0, 1))
        return e.view(b, k, -1).mean(dim=1)
