"""Building blocks shared by the embedder, generator and discriminator.

Convolutions and linear layers are spectrally normalised (Miyato et al. 2018) everywhere, as in the paper.
Tensors are ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, padding=k // 2))


def sn_linear(cin: int, cout: int, bias: bool = True) -> nn.Module:
    return spectral_norm(nn.Linear(cin, cout, bias=bias))


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * attention(x)``, gamma starts at 0 (the block starts as identity)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.query = sn_conv(channels, inner, 1)
        self.key = sn_conv(channels, inner, 1)
        self.value = sn_conv(channels, channels // 2 or 1, 1)
        self.out = sn_conv(channels // 2 or 1, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        k = F.max_pool2d(self.key(x), 2).flatten(2).transpose(1, 2)  # (B, HW/4, C')
        v = F.max_pool2d(self.value(x), 2).flatten(2).transpose(1, 2)  # (B, HW/4, C/2)
        att = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # SAGAN uses no 1/sqrt(d) scaling
        return x + self.gamma * self.out(att.transpose(1, 2).reshape(b, -1, h, w))


class AdaIN(nn.Module):
    """Instance norm whose per-channel scale and bias come from outside: ``x̂ · (1 + γ) + β``.

    ``params`` is ``(B, 2C)``: γ then β. Written as ``1 + γ`` so zero parameters give plain instance norm.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.n_params = 2 * channels

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        gamma, beta = params.view(params.shape[0], 2, self.channels, 1, 1).unbind(1)
        return F.instance_norm(x) * (1 + gamma) + beta


class ResBlockDown(nn.Module):
    """Pre-activation residual block that halves the resolution (BigGAN discriminator style).

    ``norm``: None (embedder, discriminator) or "instance" (the generator's encoder).
    """

    def __init__(self, cin: int, cout: int, norm: str | None = None, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = sn_conv(cin, cout)
        self.conv2 = sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1)
        affine = norm == "instance"
        self.norm1: nn.Module = nn.InstanceNorm2d(cin, affine=True) if affine else nn.Identity()
        self.norm2: nn.Module = nn.InstanceNorm2d(cout, affine=True) if affine else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.skip(x), 2)


class ResBlock(nn.Module):
    """Residual block at constant resolution; every normalisation is AdaIN."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = AdaIN(channels), AdaIN(channels)
        self.conv1, self.conv2 = sn_conv(channels, channels), sn_conv(channels, channels)
        self.n_params = self.norm1.n_params + self.norm2.n_params

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        p1, p2 = params.split([self.norm1.n_params, self.norm2.n_params], dim=1)
        h = self.conv1(F.relu(self.norm1(x, p1)))
        return x + self.conv2(F.relu(self.norm2(h, p2)))


class ResBlockUp(nn.Module):
    """Residual block that doubles the resolution (nearest upsampling); normalisations are AdaIN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = AdaIN(cin), AdaIN(cout)
        self.conv1, self.conv2 = sn_conv(cin, cout), sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1)
        self.n_params = self.norm1.n_params + self.norm2.n_params

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        p1, p2 = params.split([self.norm1.n_params, self.norm2.n_params], dim=1)
        h = F.interpolate(F.relu(self.norm1(x, p1)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), p2)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def down_channels(width: int, n: int, cap: int = 8) -> list[int]:
    """Channel count after each of ``n`` downsampling blocks: w, 2w, 4w, 8w, 8w, ... (capped at cap x w)."""
    return [width * min(2**i, cap) for i in range(n)]
