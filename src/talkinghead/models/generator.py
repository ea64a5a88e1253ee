"""Generator G(y, ê): a landmark sketch → a frame of the person whose embedding is ê.

Image-to-image network (Johnson et al. 2016, with BigGAN-like residual blocks): an encoder of residual
downsampling blocks with instance norm, AdaIN residual blocks at the bottleneck, residual upsampling blocks with
AdaIN, self-attention in both halves, tanh output. All AdaIN scales/biases ψ come from ê through the projection
P; in fine-tuning, ψ can instead be a person-specific parameter initialised from P·ê.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.blocks import AdaIN, ResBlock, ResBlockDown, ResBlockUp, SelfAttention, sn_conv, sn_linear


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        chans = [w * min(2 ** (i + 1), 8) for i in range(cfg.gen_downs)]  # 2w, 4w, 8w, ...
        self.stem = sn_conv(3, w)
        down: list[nn.Module] = []
        cin, res = w, cfg.resolution
        for c in chans:
            down.append(ResBlockDown(cin, c, norm="instance"))
            cin, res = c, res // 2
            if res == cfg.attention_res:
                down.append(SelfAttention(c))
        self.down = nn.ModuleList(down)
        self.middle = nn.ModuleList([ResBlock(cin) for _ in range(cfg.gen_res_blocks)])
        up: list[nn.Module] = []
        for c in [*reversed(chans[:-1]), w]:
            up.append(ResBlockUp(cin, c))
            cin, res = c, res * 2
            if res == cfg.attention_res:
                up.append(SelfAttention(c))
        self.up = nn.ModuleList(up)
        self.out_norm = AdaIN(w)
        self.out_conv = sn_conv(w, 3)
        adain = [m for m in (*self.middle, *self.up) if hasattr(m, "n_params")]
        self._splits = [m.n_params for m in adain] + [self.out_norm.n_params]
        self.psi_dim = sum(self._splits)
        layers: list[nn.Module] = []
        for _ in range(cfg.proj_layers - 1):
            layers += [sn_linear(cfg.embed_dim, cfg.embed_dim), nn.ReLU()]
        layers.append(sn_linear(cfg.embed_dim, self.psi_dim, bias=True))
        self.project = nn.Sequential(*layers)
        """P: ê ``(B, embed_dim)`` → ψ ``(B, psi_dim)``."""

    def forward(self, sketch: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``sketch`` ``(B, 3, S, S)`` in [-1, 1], ``psi`` ``(B, psi_dim)`` (= ``project(ê)``) → ``(B, 3, S, S)`` in [-1, 1]."""
        params = list(psi.split(self._splits, dim=1))
        h = self.stem(sketch)
        for block in self.down:
            h = block(h)
        i = 0
        for block in (*self.middle, *self.up):
            if isinstance(block, SelfAttention):
                h = block(h)
            else:
                h = block(h, params[i])
                i += 1
        h = F.relu(self.out_norm(h, params[i]))
        return torch.tanh(self.out_conv(h))

    def generate(self, sketch: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """G(y, ê) = forward(y, P·ê)."""
        return self(sketch, self.project(embedding))
