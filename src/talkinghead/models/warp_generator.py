"""Warp-and-refine generator: move the source's own pixels and features, and generate only what warping cannot give.

Inputs per target frame: K source frames with their landmark sketches, the target's landmark sketch and, per
source, a *prior* backward flow computed analytically from the landmarks (a thin-plate spline over the whole frame,
:func:`talkinghead.faces.warp.tps_grid`). The network

1. encodes each source (image + sketch) at 1/2, 1/4 and 1/8 of the output side (done once per source at inference);
2. looks at each source warped by its prior flow next to the target sketch (a small U-Net at ``motion_resolution``)
   and predicts a flow correction, occlusion masks for the three feature scales and a per-pixel confidence; the
   confidences are a softmax across the K sources, so several shots can fill what one cannot see;
3. warps the source features with the corrected flow, fuses them, and decodes them (AdaIN from the person
   embedding ê through P at the bottleneck) to the native output size: generated RGB plus three blend logits;
4. blends, per pixel, the warped source pixels, the *unwarped* source pixels (a static background stays exactly
   where it was; only where the landmark flow says the content did not move, ``cfg.static_motion_px``) and the
   generated pixels.

The last layers start at zero flow correction, fully visible features and a blend that trusts the warped source,
so training begins at the thin-plate warp's geometry instead of at noise.

Shapes: images ``(B, K, 3, S, S)`` and ``(B, 3, S, S)`` in [-1, 1]; prior ``(B, K, 2, m, m)`` in grid_sample's
[-1, 1] convention (``align_corners=False``); target sketch ``(B, 3, m, m)`` in [-1, 1]; ψ ``(B, psi_dim)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.blocks import AdaIN


def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def conv_format(device: torch.device) -> torch.memory_format:
    """The memory format the convolutions' inputs get: channels-last on the CPU, where oneDNN's convolutions (22 to
    37 % less time at 1 thread than channels-first at this generator's sizes) and the 2x upsamplings between them
    (3x to 7x less) are faster; the convolutions' outputs keep it, so the motion net and the decoder stay in it."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def shuffle2(x: torch.Tensor) -> torch.Tensor:
    """``F.pixel_shuffle(x, 2)`` → a contiguous ``(N, C/4, 2H, 2W)``, with one permuted copy whether ``x`` is
    channels-first or channels-last (the same values; faster than ``pixel_shuffle`` on a CPU thread)."""
    n, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last):  # memory (N, H, W, C/4, 2, 2)
        return x.permute(0, 2, 3, 1).reshape(n, h, w, c // 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(
            n, c // 4, 2 * h, 2 * w)
    return x.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, 2 * h, 2 * w)


class SourceEncoder(nn.Module):
    """Source image + sketch ``(N, 6, S, S)`` → features at S/2, S/4, S/8 with ``chans`` channels."""

    def __init__(self, chans: tuple[int, int, int]) -> None:
        super().__init__()
        c1, c2, c3 = chans
        self.c1a, self.c1b = conv(6, c1, 2), conv(c1, c1)
        self.c2a, self.c2b = conv(c1, c2, 2), conv(c2, c2)
        self.c3a, self.c3b = conv(c2, c3, 2), conv(c3, c3)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = act(self.c1b(act(self.c1a(x))))
        f2 = act(self.c2b(act(self.c2a(f1))))
        f3 = act(self.c3b(act(self.c3a(f2))))
        return [f1, f2, f3]


class MotionNet(nn.Module):
    """Per source at m²: [prior-warped source, unwarped source, target sketch, prior displacement] (11 channels) →
    flow correction (2), occlusion logits for 3 scales (3), confidence logit (1), and features at m and m/2."""

    OUT = 6

    def __init__(self, w: int) -> None:
        super().__init__()
        self.e1 = conv(11, w)
        self.e2 = conv(w, 2 * w, 2)
        self.e3 = conv(2 * w, 3 * w, 2)
        self.e3b = conv(3 * w, 3 * w)
        self.d2 = conv(3 * w + 2 * w, 2 * w)
        self.d1 = conv(2 * w + w, w)
        self.head = nn.Conv2d(w, self.OUT, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0, 0.0, 4.0, 4.0, 4.0, 0.0]))  # trust the prior at the start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e1 = act(self.e1(x))
        e2 = act(self.e2(e1))
        e3 = act(self.e3b(act(self.e3(e2))))
        d2 = act(self.d2(torch.cat([up2(e3), e2], 1)))
        d1 = act(self.d1(torch.cat([up2(d2), e1], 1)))
        return self.head(d1), d1, d2


class AdaResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.n1, self.n2 = AdaIN(c), AdaIN(c)
        self.c1, self.c2 = conv(c, c), conv(c, c)
        self.n_params = self.n1.n_params + self.n2.n_params

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        p1, p2 = params.split([self.n1.n_params, self.n2.n_params], dim=1)
        h = self.c1(act(self.n1(x, p1)))
        return x + self.c2(act(self.n2(h, p2)))


class WarpGenerator(nn.Module):
    """See the module docstring. ``cfg.width`` = w sets the channels: w/2, w and 2w at S/2, S/4 and S/8 (most of
    the compute stays at S/4 and below, so 256² runs in real time on a CPU); ``cfg.gen_res_blocks`` AdaIN blocks."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        c1, c2, c3 = max(4, w // 2), w, 2 * w
        mw = max(8, 3 * w // 4)
        self.encoder = SourceEncoder((c1, c2, c3))
        self.motion = MotionNet(mw)
        self.bottleneck = conv(c3 + 2 * mw, c3)
        self.blocks = nn.ModuleList([AdaResBlock(c3) for _ in range(cfg.gen_res_blocks)])
        self.dec2a, self.dec2b = conv(c3 + c2 + mw, c2), conv(c2, c2)
        self.dec1a = conv(c2 + c1, c1)
        self.out = nn.Conv2d(c1, 6 * 4, 3, padding=1)  # pixel shuffle → (rgb, 3 blend logits) at full size
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            bias = torch.zeros(6, 4)
            bias[3] = 3.0  # warped source
            bias[4] = 0.0  # unwarped source
            bias[5] = -1.0  # generated
            self.out.bias.copy_(bias.flatten())
        binomial = torch.tensor([1.0, 2.0, 1.0]) / 4.0
        self.register_buffer("smooth_kernel", (binomial[:, None] * binomial[None, :]).expand(3, 1, 3, 3).clone(),
                             persistent=False)
        self._splits = [b.n_params for b in self.blocks]
        self.psi_dim = sum(self._splits)
        layers: list[nn.Module] = []
        for _ in range(cfg.proj_layers - 1):
            layers += [nn.Linear(cfg.embed_dim, cfg.embed_dim), nn.ReLU()]
        last = nn.Linear(cfg.embed_dim, self.psi_dim)
        nn.init.normal_(last.weight, std=0.02 / cfg.embed_dim**0.5)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.project = nn.Sequential(*layers)
        """P: ê ``(B, embed_dim)`` → ψ ``(B, psi_dim)``."""

    # -- the two halves -------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, sketches: torch.Tensor) -> list[torch.Tensor]:
        """Sources ``(N, 3, S, S)`` x2 → features ``[(N, w, S/2, S/2), (N, 2w, S/4, S/4), (N, 4w, S/8, S/8)]``."""
        return self.encoder(torch.cat([images, sketches], 1))

    def forward(self, images: torch.Tensor, feats: list[torch.Tensor], prior: torch.Tensor,
                target_sketch: torch.Tensor, psi: torch.Tensor,
                region: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sources ``images (B, K, 3, S, S)`` and their ``feats`` (from :meth:`encode`, each ``(B, K, C, h, w)``),
        ``prior (B, K, 2, m, m)``, ``target_sketch (B, 3, m, m)``, ``psi (B, psi_dim)`` →
        ``(B, 3, S, S)`` in [-1, 1] and auxiliary maps (``flow_delta``, ``blend``: as predicted, before the fixed
        rules; ``weights (B, 3, S, S)``: the warped, unwarped and generated paths' weights after them; ``grid (BK, m,
        m, 2)``: where each output pixel samples each source; ``conf (BK, 1, m, m)``: the sources' shares, None with
        one source; ``generated``, ``warped``). ``region (B, 1, m, m)`` in [0, 1], at inference (:func:`~talkinghead.models.inputs.generation_regions`):
        where generated pixels may be used (``model.gen_region``); None: anywhere."""
        b, k = images.shape[:2]
        s, m = self.cfg.resolution, self.cfg.motion_resolution  # constants, so the graph exports to ONNX
        flat = images.flatten(0, 1)
        small = F.avg_pool2d(flat, s // m) if s != m else flat
        grid0 = prior.flatten(0, 1).permute(0, 2, 3, 1)  # (BK, m, m, 2)
        warped0 = F.grid_sample(small, grid0, mode="bilinear", padding_mode="border", align_corners=False)
        disp = (prior - _identity(m, prior)).flatten(0, 1)  # (BK, 2, m, m): the prior's displacement
        sk = target_sketch[:, None].expand(b, k, -1, -1, -1).flatten(0, 1)
        fmt = conv_format(flat.device)  # the inputs that come channels-first are converted once
        x = torch.cat([warped0, small, sk, disp * 4.0], 1).contiguous(memory_format=fmt)
        head, mf1, mf2 = self.motion(x)
        delta = head[:, 0:2] * 0.1
        if self.cfg.border_flow > 0:  # the landmark flow alone next to the crop's border
            c = _identity(m, delta)[0]  # (1, 2, m, m) in [-1, 1]
            near = torch.minimum(1.0 - c[:, 0:1].abs(), 1.0 + c[:, 1:2])  # left, right and top
            delta = delta * (near / (2.0 * self.cfg.border_flow)).clamp(0.0, 1.0)
        occ = torch.sigmoid(head[:, 2:5])
        # (BK, 1, m, m) confidences, a softmax across the sources; with one source it is exactly 1 everywhere, so
        # the products with it (and its resized copies) are skipped: None stands for all ones (an ONNX export keeps
        # the general graph: K is one of its dynamic axes)
        one = k == 1 and not torch.onnx.is_in_onnx_export()
        conf = None if one else torch.softmax(head[:, 5:6].reshape(b, k, 1, m, m), dim=1).flatten(0, 1)
        grid = (prior.flatten(0, 1) + delta).permute(0, 2, 3, 1)  # (BK, m, m, 2)

        def fuse(t: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
            """Σ over the K sources of ``t * weight`` (``weight`` None: ones)."""
            if weight is not None:
                t = t * weight
            return t if one else t.reshape(b, k, *t.shape[1:]).sum(1)

        fused = []
        for i, f in enumerate(feats):
            f = f.flatten(0, 1)
            size = s >> (i + 1)
            g = _resize_grid(grid, size)
            wf = F.grid_sample(f, g, mode="bilinear", padding_mode="border", align_corners=False)
            wgt = _resize(_times(occ[:, i : i + 1], conf), size)
            fused.append(fuse(wf, wgt).contiguous(memory_format=fmt))
        mot1 = fuse(mf1, conf).contiguous(memory_format=fmt)  # (B, mw, m, m); K > 1 sums lose the format
        mot2 = fuse(mf2, _resize_opt(conf, m // 2)).contiguous(memory_format=fmt)
        h = act(self.bottleneck(torch.cat([fused[2], _resize(mot2, s // 8)], 1)))
        for block, p in zip(self.blocks, psi.split(self._splits, dim=1), strict=True):
            h = block(h, p)
        h = up2(h)
        h = act(self.dec2b(act(self.dec2a(torch.cat([h, fused[1], _resize(mot1, s // 4)], 1)))))
        h = up2(h)
        h = act(self.dec1a(torch.cat([h, fused[0]], 1)))
        out = shuffle2(self.out(h))  # (B, 6, S, S)
        generated = torch.tanh(out[:, :3])
        logits = out[:, 3:6]
        if self.cfg.smooth_blend:  # pixel shuffle leaves a 2-pixel stripe pattern in the logits: alternating rows
            logits = F.conv2d(F.pad(logits, (1, 1, 1, 1), mode="replicate"), self.smooth_kernel, groups=3)
        blend = torch.softmax(logits, dim=1)
        full_grid = _resize_grid(grid, s)
        warped = F.grid_sample(flat, full_grid, mode="bilinear", padding_mode="border", align_corners=False)
        conf_full = _resize_opt(conf, s)
        warped_px = fuse(warped, conf_full)
        static_px = fuse(flat, conf_full)
        w_warp, w_static, w_gen = blend[:, 0:1], blend[:, 1:2], blend[:, 2:3]
        if self.cfg.static_motion_px > 0:  # where the content moved, the unwarped source's weight goes to the warp
            moved = (disp * disp).sum(1, keepdim=True).sqrt() * (s / 2)  # (BK, 1, m, m) pixels (.norm: 40x slower)
            gate = fuse(_resize((1.0 - moved / self.cfg.static_motion_px).clamp(0.0, 1.0), s), conf_full)
            w_warp = w_warp + w_static * (1.0 - gate)
            w_static = w_static * gate
        if region is not None:  # outside it, the generated weight goes to the sources, in their own proportion
            cut = w_gen * (1.0 - _resize(region, s))
            share = (w_warp + 1e-3) / (w_warp + w_static + 1e-3)
            w_warp, w_static, w_gen = w_warp + cut * share, w_static + cut * (1.0 - share), w_gen - cut
        image = w_warp * warped_px + w_static * static_px + w_gen * generated
        # what composing the same image at another resolution needs (inference/compose.compose_layers): the final
        # weights of the three paths, the sampling grid and the sources' confidences (None: one source)
        return image, {"flow_delta": delta, "blend": blend, "generated": generated, "warped": warped_px,
                       "weights": torch.cat([w_warp, w_static, w_gen], 1), "grid": grid, "conf": conf}

    def generate(self, images: torch.Tensor, sketches: torch.Tensor, prior: torch.Tensor, target_sketch: torch.Tensor,
                 embedding: torch.Tensor) -> torch.Tensor:
        """Everything in one call (training): sources ``(B, K, 3, S, S)`` x2 → ``(B, 3, S, S)``."""
        b, k = images.shape[:2]
        feats = [f.reshape(b, k, *f.shape[1:]) for f in self.encode(images.flatten(0, 1), sketches.flatten(0, 1))]
        return self(images, feats, prior, target_sketch, self.project(embedding))[0]


def _identity(m: int, like: torch.Tensor) -> torch.Tensor:
    c = (torch.arange(m, dtype=like.dtype, device=like.device) + 0.5) * (2.0 / m) - 1.0
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xs, ys], 0)[None, None]  # (1, 1, 2, m, m)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _resize_opt(x: torch.Tensor | None, size: int) -> torch.Tensor | None:
    """:func:`_resize` of optional weights (None: all ones, at any size)."""
    return None if x is None else _resize(x, size)


def _times(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``x * weight`` (None: all ones)."""
    return x if weight is None else x * weight


def _resize_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """A sampling grid ``(N, m, m, 2)`` resampled to ``size``² (coordinates are resolution-free)."""
    if grid.shape[1] == size:
        return grid
    return _resize(grid.permute(0, 3, 1, 2), size).permute(0, 2, 3, 1)
