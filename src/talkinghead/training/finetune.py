"""Few-shot fine-tuning (the paper's §3.3): adapt the meta-learned generator and discriminator to one person.

ψ′ (the person's AdaIN parameters) starts at P·ê and w′ (the discriminator's column) at ê, so
``Vᵀ(w′ + w₀)`` starts at the paper's ``Vᵀ(ê + w₀)``. G (with ψ′) and D (with w′) are then trained on the
T source frames with the content, adversarial and feature-matching losses — no embedder, no match loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from talkinghead.config import LossConfig, OptimConfig
from talkinghead.errors import InputError
from talkinghead.faces.sketch import feature_region
from talkinghead.faces.warp import prior_grids, tps_grid, warp_image
from talkinghead.losses.adversarial import discriminator_hinge, generator_hinge
from talkinghead.losses.blend import generated_outside
from talkinghead.losses.matching import feature_matching
from talkinghead.losses.perceptual import ContentLoss
from talkinghead.models.bundle import ModelBundle, clone_network
from talkinghead.models.inputs import embedder_inputs, model_crops, sketches_at, to_input

_CONTENT: dict[str, ContentLoss] = {}
FINETUNE_PARTS = ("all", "decoder", "adain")
ONE_SHOT_LR = 1e-5
"""The warp generator's fine-tuning learning rate for one photo (T > 1: ``OptimConfig.lr_g``, 5e-5). One photo gives
only augmented copies of itself to learn from, and at 5e-5 20 steps lowered validation SSIM / PSNR from the
feed-forward 0.8806 / 29.80 to 0.8777 / 29.29; at 1e-5 with half the episodes the shot itself, 0.8802 / 29.87
(the six validation identities of ``talkinghead evaluate``, T = 1, 8 frames each, 2026-11-29)."""


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


def default_steps(n_sources: int, arch: str = "synthesis") -> int:
    """Fine-tuning steps for T source frames, chosen by measurement (``benchmarks/finetune_steps.py``: a validation
    identity, 16 driving frames from another clip, L1 to the real frames at the model's resolution).

    - ``synthesis`` (the paper's generator, shipped 64² model): 50 for one photo, 120 for 8 or more. L1 0.112
      (feed-forward) → 0.067 after 30 steps → 0.064 after 100 for T = 1; 0.119 → 0.066 → 0.063 for T = 8.
    - ``warp``: 20. Fine-tuning measured no gain over feed-forward (step-750 model, L1 at 256²: T = 1 0.0565 FF,
      0.0567 after 20 steps, 0.0570 after 50; T = 8 0.0533, 0.0535, 0.0536; 30 steps at a 6x higher learning rate:
      0.0537): the warped source already carries the person. 20 steps (about a minute on a CPU) keep a person file
      close to the meta-learned model. What learns (``benchmarks/finetune_parts.py``, shipped model, the
      evaluation's validation targets, 20 steps, SSIM / PSNR): T = 1 FF 0.8051 / 27.02, all of G 0.8012 / 26.32,
      G without encoder and motion network 0.8039 / 26.24, ψ′ alone 0.8051 / 27.02 (it barely moves); T = 8 FF
      0.8123 / 27.53, all 0.8100 / 27.38, decoder 0.8117 / 27.56, ψ′ 0.8123 / 27.53. The decoder is the default.
    """
    if arch == "warp":
        return 20
    return int(min(120, 40 + 10 * n_sources))


def finetune(
    bundle: ModelBundle,
    crops: np.ndarray,
    landmarks: np.ndarray,
    steps: int,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    loss_cfg: LossConfig | None = None,
    optim_cfg: OptimConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    parts: str | None = None,
) -> FinetuneResult:
    """Fine-tune on T source crops ``(T, S0, S0, 3) uint8`` with their landmarks ``(T, 68, 2)`` (crop pixels).

    ``parts`` (warp generator only): what learns the person: ``all`` (G's weights and ψ′), ``decoder`` (G without
    its source encoder and motion network, so the flow and masks stay meta-learned: the default, see
    :func:`default_steps`) or ``adain`` (ψ′ alone). Returns a new bundle of kind "person" (the input bundle is not
    modified).
    """
    if parts is None:
        parts = "decoder" if bundle.config.arch == "warp" else "all"
    if parts not in FINETUNE_PARTS:
        raise InputError(f"unknown fine-tuning parts {parts!r} (choose from {', '.join(FINETUNE_PARTS)})")
    if bundle.embedder is None or bundle.discriminator is None:
        raise InputError("fine-tuning needs a meta-learned model with its embedder and discriminator")
    device = torch.device(device)
    if bundle.config.arch == "warp":
        return _finetune_warp(bundle, crops, landmarks, steps, device, batch_size, loss_cfg, optim_cfg, seed,
                              progress, on_step, parts)
    if parts != "all":
        raise InputError("only the warp generator fine-tunes parts of itself (parts='all' for this model)")
    loss_cfg = loss_cfg or LossConfig()
    optim_cfg = optim_cfg or OptimConfig()
    res = bundle.config.resolution
    small, lmk = model_crops(bundle, crops, landmarks)
    frames = torch.from_numpy(to_input(small))
    sketches = torch.from_numpy(sketches_at(lmk, res, res))
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
        _record(history, rec, step, on_step)
    gen.eval()
    disc.eval()
    person = ModelBundle(bundle.config, gen, disc, None, psi.detach(), w.detach(),
                         meta={**bundle.meta, "finetune_steps": steps, "finetune_sources": t})
    return FinetuneResult(person, steps, time.perf_counter() - t0, history)


def _record(history: list[dict[str, float]], rec: dict[str, float], step: int,
            on_step: Callable[[int, dict[str, float]], None] | None) -> None:
    if not all(np.isfinite(v) for v in rec.values()):
        raise InputError(f"fine-tuning diverged at step {step + 1} (loss {rec}); try fewer steps")
    history.append(rec)
    if on_step is not None:
        on_step(step + 1, rec)


def augment(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A plausible other view of one shot: a random similarity (±6°, ±6 % scale, ±4 % shift) of the image and its
    landmarks, a small random change of mouth opening and gaze by a thin-plate warp, and of brightness."""
    s = image.shape[0]
    ang = rng.uniform(-6, 6)
    scale = rng.uniform(0.94, 1.06)
    mat = cv2.getRotationMatrix2D((s / 2, s / 2), ang, scale)
    mat[:, 2] += rng.uniform(-0.04, 0.04, 2) * s
    lmk = landmarks @ mat[:, :2].T + mat[:, 2]
    moved = lmk.copy()
    jaw = rng.uniform(-0.03, 0.03) * s  # open or close the mouth a little
    moved[5:12, 1] += jaw * np.array([0.3, 0.6, 0.9, 1.0, 0.9, 0.6, 0.3])
    moved[56:59, 1] += jaw
    moved[65:68, 1] += jaw
    out = cv2.warpAffine(image, mat, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = warp_image(out, tps_grid(moved, lmk, s, 64))
    gain = rng.uniform(0.92, 1.08)
    out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return out, moved.astype(np.float32)


def warp_episodes(crops: np.ndarray, landmarks: np.ndarray, n: int, rng: np.random.Generator,
                  motion_res: int, head_ring: float = 0.0, self_share: float = 0.5) -> dict[str, torch.Tensor]:
    """``n`` fine-tuning episodes from T shots: with T > 1, a shot is the target and up to two others the sources;
    with T = 1 (and for a third of the episodes otherwise) the source is an augmented copy of the target shot, and
    with T = 1 a share of the episodes (``self_share``, half) give the shot itself as its source (without them, 20
    steps on augmented copies alone unlearnt keeping still pixels still: a near-still validation identity fell from
    49.1 to 37.8 dB; with a quarter of them, from 46.3 to 43.8 dB; see :data:`ONE_SHOT_LR`)."""
    t, s = len(crops), crops.shape[1]
    k = min(2, t - 1) if t > 1 else 1
    out: dict[str, list[np.ndarray]] = {"frames": [], "sketches": [], "target": [], "target_sketch": [], "prior": [],
                                        "region": []}
    for _ in range(n):
        j = int(rng.integers(t))
        if t == 1 and rng.random() < self_share:  # the shot itself: what did not move stays exactly as it was
            src, src_l = crops[[j] * k], landmarks[[j] * k]
        elif t == 1 or rng.random() < 1 / 3:
            pairs = [augment(crops[j], landmarks[j], rng) for _ in range(k)]
            src = np.stack([p[0] for p in pairs])
            src_l = np.stack([p[1] for p in pairs])
        else:
            others = rng.choice(np.delete(np.arange(t), j), size=k, replace=False)
            src, src_l = crops[others], landmarks[others]
        out["frames"].append(to_input(src))
        out["sketches"].append(sketches_at(src_l, s, s))
        out["target"].append(to_input(crops[j : j + 1])[0])
        out["target_sketch"].append(sketches_at(landmarks[j : j + 1], s, motion_res)[0])
        out["prior"].append(prior_grids(landmarks[j : j + 1], src_l, s, motion_res, head_ring)[0])
        out["region"].append(feature_region(landmarks[j] * (motion_res / s), motion_res)[None])
    return {k_: torch.from_numpy(np.stack(v)) for k_, v in out.items()}


def _finetune_warp(bundle: ModelBundle, crops: np.ndarray, landmarks: np.ndarray, steps: int, device: torch.device,
                   batch_size: int, loss_cfg: LossConfig | None, optim_cfg: OptimConfig | None, seed: int,
                   progress: bool, on_step: Callable[[int, dict[str, float]], None] | None,
                   parts: str) -> FinetuneResult:
    """The warp generator learns this person: ψ′ (from P·ê) and the G weights that ``parts`` names, on
    reconstructions of the shots (pixel L1 + VGG at the training loss resolution, and meta-learning's
    ``gen_outside`` term, so the blend keeps the person's own pixels outside the eyes and mouth). The discriminator
    is kept as it is."""
    from talkinghead.training.metalearn import area

    cfg = bundle.config
    loss_cfg = loss_cfg or LossConfig(l1=10.0, face=0.0, resolution=128, gen_outside=2.0)
    optim_cfg = optim_cfg or (OptimConfig(lr_g=ONE_SHOT_LR) if len(crops) == 1 else OptimConfig())
    crops, landmarks = model_crops(bundle, crops, landmarks)
    gen = clone_network(bundle.generator).to(device).train()
    emb = bundle.embedder.to(device).eval()  # type: ignore[union-attr]
    with torch.no_grad():
        f, sk = embedder_inputs(bundle, crops, landmarks)
        e_hat = emb.embed_frames(torch.from_numpy(f).to(device), torch.from_numpy(sk).to(device)).mean(0, keepdim=True)
        psi = nn.Parameter(gen.project(e_hat).detach().clone())
    gen.project.requires_grad_(False)
    if parts == "decoder":
        gen.encoder.requires_grad_(False)
        gen.motion.requires_grad_(False)
    elif parts == "adain":
        gen.requires_grad_(False)
    opt = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad] + [psi], lr=optim_cfg.lr_g,
                           betas=(optim_cfg.beta1, optim_cfg.beta2))
    content = content_loss(loss_cfg).to(device)
    rng = np.random.default_rng(seed)
    lres = loss_cfg.resolution or cfg.resolution
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for step in tqdm(range(steps), desc="fine-tune", unit="step", disable=not progress or steps == 0):
        episodes = warp_episodes(crops, landmarks, batch_size, rng, cfg.motion_resolution, cfg.head_ring)
        b = {k: v.to(device) for k, v in episodes.items()}
        n, k = b["frames"].shape[:2]
        feats = [x.reshape(n, k, *x.shape[1:]) for x in gen.encode(b["frames"].flatten(0, 1), b["sketches"].flatten(0, 1))]
        fake, aux = gen(b["frames"], feats, b["prior"], b["target_sketch"], psi.expand(n, -1))
        c, _ = content(area(fake, lres), area(b["target"], lres))
        l1 = F.l1_loss(fake, b["target"])
        loss = c + loss_cfg.l1 * l1
        if loss_cfg.gen_outside > 0:
            loss = loss + loss_cfg.gen_outside * generated_outside(aux["blend"], b["region"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _record(history, {"g_total": float(loss.detach()), "content": float(c.detach()), "l1": float(l1.detach())},
                step, on_step)
    gen.eval()
    person = ModelBundle(cfg, gen, bundle.discriminator, None, psi.detach(), e_hat[0].detach(),
                         meta={**bundle.meta, "finetune_steps": steps, "finetune_sources": len(crops)})
    return FinetuneResult(person, steps, time.perf_counter() - t0, history)
