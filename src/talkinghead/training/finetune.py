"""Few-shot fine-tuning (the paper's §3.3): adapt the meta-learned generator and discriminator to one person.

ψ′ (the person's AdaIN parameters) starts at P·ê and w′ (the discriminator's column) at ê, so
``Vᵀ(w′ + w₀)`` starts at the paper's ``Vᵀ(ê + w₀)``. G (with ψ′) and D (with w′) are then trained on the
T source frames with the content, adversarial and feature-matching losses — no embedder, no match loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from talkinghead.config import LossConfig, OptimConfig
from talkinghead.errors import InputError
from talkinghead.losses.adversarial import discriminator_hinge, generator_hinge
from talkinghead.losses.matching import feature_matching
from talkinghead.losses.perceptual import ContentLoss
from talkinghead.models.bundle import ModelBundle, clone_network

_CONTENT: dict[str, ContentLoss] = {}


def content_loss(cfg: LossConfig) -> ContentLoss:
    """Loading the perceptual networks takes a second; keep one per configuration."""
    key = repr(cfg)
    if key not in _CONTENT:
        _CONTENT[key] = ContentLoss(cfg)
    return _CONTENT[key]


@dataclass
class FinetuneResult:
    bundle: ModelBundle
    steps: int
    seconds: float
    losses: list[dict[str, float]]


def default_steps(n_sources: int) -> int:
    """Fine-tuning steps for T source frames: 50 for one photo, 120 for 8 or more.

    Measured with ``benchmarks/finetune_steps.py`` (shipped 64² model, a validation identity, 30 driving frames):
    L1 to the real frames 0.112 (feed-forward) → 0.067 after 30 steps → 0.064 after 100 for T = 1, and
    0.119 → 0.066 → 0.063 for T = 8: most of the gain comes in the first 30 steps.
    """
    return int(min(120, 40 + 10 * n_sources))


def finetune(
    bundle: ModelBundle,
    frames: torch.Tensor,
    sketches: torch.Tensor,
    steps: int,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    loss_cfg: LossConfig | None = None,
    optim_cfg: OptimConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> FinetuneResult:
    """Fine-tune on T source frames ``(T, 3, S, S)`` with their sketches, both in [-1, 1].

    Returns a new bundle of kind "person" (the input bundle is not modified).
    """
    if bundle.embedder is None or bundle.discriminator is None:
        raise InputError("fine-tuning needs a meta-learned model with its embedder and discriminator")
    loss_cfg = loss_cfg or LossConfig()
    optim_cfg = optim_cfg or OptimConfig()
    device = torch.device(device)
    gen = clone_network(bundle.generator).to(device).train()
    disc = clone_network(bundle.discriminator).to(device).train()
    emb = bundle.embedder.to(device).eval()
    frames, sketches = frames.to(device), sketches.to(device)
    with torch.no_grad():
        e_hat = emb.embed_frames(frames, sketches).mean(0, keepdim=True)
        psi = nn.Parameter(gen.project(e_hat).detach().clone())
    w = nn.Parameter(e_hat[0].detach().clone())
    gen.project.requires_grad_(False)  # ψ′ replaces P·ê
    betas = (optim_cfg.beta1, optim_cfg.beta2)
    g_params = [p for p in gen.parameters() if p.requires_grad] + [psi]
    opt_g = torch.optim.Adam(g_params, lr=optim_cfg.lr_g, betas=betas)
    opt_d = torch.optim.Adam([*disc.parameters(), w], lr=optim_cfg.lr_d, betas=betas)
    content = content_loss(loss_cfg).to(device)
    rng = np.random.default_rng(seed)
    t = len(frames)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for step in tqdm(range(steps), desc="fine-tune", unit="step", disable=not progress or steps == 0):
        idx = torch.from_numpy(rng.choice(t, size=min(batch_size, t), replace=False)).to(device)
        x, y = frames[idx], sketches[idx]
        n = len(idx)
        disc.requires_grad_(False)
        fake = gen(y, psi.expand(n, -1))
        scores, feats = disc(torch.cat([fake, x]), y.repeat(2, 1, 1, 1), w.detach().expand(2 * n, -1))
        c, _ = content(fake, x)
        loss_g = c + loss_cfg.adversarial * generator_hinge(scores[:n]) + loss_cfg.feature_matching * feature_matching(
            [f[:n] for f in feats], [f[n:] for f in feats])
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        disc.requires_grad_(True)
        scores_d, _ = disc(torch.cat([x, fake.detach()]), y.repeat(2, 1, 1, 1), w.expand(2 * n, -1))
        loss_d = discriminator_hinge(scores_d[:n], scores_d[n:])
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        rec = {"g_total": float(loss_g.detach()), "content": float(c.detach()), "d_hinge": float(loss_d.detach())}
        if not all(np.isfinite(v) for v in rec.values()):
            raise InputError(f"fine-tuning diverged at step {step + 1} (loss {rec}); try fewer steps")
        history.append(rec)
        if on_step is not None:
            on_step(step + 1, rec)
    gen.eval()
    disc.eval()
    person = ModelBundle(bundle.config, gen, disc, None, psi.detach(), w.detach(),
                         meta={**bundle.meta, "finetune_steps": steps, "finetune_sources": t})
    return FinetuneResult(person, steps, time.perf_counter() - t0, history)
