"""Meta-learning (the paper's §3.2): embedder, generator and discriminator trained together on episodes.

One step: the embedder averages K source frames into ê; the generator draws the target frame from its sketch
and ê; the generator step minimises content + adversarial + feature-matching + embedding-match losses; the
discriminator step minimises the hinge loss on (real target, generated target) for video i.

Runs on one device or under ``torchrun`` (DistributedDataParallel: per-rank data, rank-0 logging and
checkpoints). Resuming restores weights, optimizer moments, spectral-norm vectors and the sample counter, so the
next step is bit-identical to the one an uninterrupted run would have taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from talkinghead.config import TrainConfig, from_dict, to_dict
from talkinghead.data.dataset import PreparedDataset
from talkinghead.data.episodes import EpisodeDataset, SampleNumbers, WarpEpisodeDataset
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.io.atomic import atomic_write_text
from talkinghead.losses.adversarial import discriminator_hinge, generator_hinge
from talkinghead.losses.blend import generated_inside, generated_outside, region_l1
from talkinghead.losses.matching import embedding_match, feature_matching
from talkinghead.losses.perceptual import ContentLoss
from talkinghead.losses.structure import ssim_loss
from talkinghead.models.discriminator import VideoEmbeddings
from talkinghead.models.embedder import Embedder
from talkinghead.models.factory import build_discriminator, build_embedder, build_generator
from talkinghead.training.checkpoint import (
    latest_checkpoint,
    load_modules,
    load_optimizer,
    read_checkpoint,
    restore_rng,
    save_checkpoint,
)
from talkinghead.training.distributed import DistInfo, any_rank, init_distributed, shutdown_distributed, sync_rows
from talkinghead.training.visualize import save_grid


class TrainingDiverged(TalkingHeadError):
    """A loss became NaN or infinite."""


class EmbedGenerate(nn.Module):
    """E and G as one module (one DDP wrapper): episode → (generated target, ê, auxiliary maps; warp only:
    ``flow_delta`` and ``blend``, see :class:`~talkinghead.models.warp_generator.WarpGenerator`)."""

    def __init__(self, embedder: Embedder, generator: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder
        self.generator = generator

    def forward(self, frames: torch.Tensor, sketches: torch.Tensor, target_sketch: torch.Tensor,
                prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if prior is None:  # the paper's generator: sketch + ê
            e = self.embedder(frames, sketches)
            return self.generator.generate(target_sketch, e), e, {}
        # warp-and-refine: ê from downscaled sources steers AdaIN; the sources themselves are warped
        b, k = frames.shape[:2]
        res = self.embedder.cfg.resolution
        e = self.embedder(area(frames.flatten(0, 1), res).view(b, k, 3, res, res),
                          area(sketches.flatten(0, 1), res).view(b, k, 3, res, res))
        gen = self.generator
        feats = [f.reshape(b, k, *f.shape[1:]) for f in gen.encode(frames.flatten(0, 1), sketches.flatten(0, 1))]
        fake, aux = gen(frames, feats, prior, target_sketch, gen.project(e))
        return fake, e, {"flow_delta": aux["flow_delta"], "blend": aux["blend"]}


def area(x: torch.Tensor, size: int) -> torch.Tensor:
    """Downscale ``(N, C, H, W)`` to ``size``² by area averaging (no-op at that size)."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="area")


def _bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of ``(B, C, H, W)``."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(name)


def data_hash(keys: list[str], data: PreparedDataset) -> str:
    h = hashlib.sha256()
    frames = {c.key: c.n_frames for c in data.clips}
    for k in keys:
        h.update(f"{k}:{frames.get(k)}\n".encode())
    return h.hexdigest()[:16]


class MetaLearner:
    """The networks, losses and optimizers of meta-learning, and one training step."""

    def __init__(self, cfg: TrainConfig, n_videos: int, device: torch.device, dist_info: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.dist = dist_info or DistInfo()
        torch.manual_seed(cfg.seed)
        mc = cfg.model
        self.warp = mc.arch == "warp"
        self.embedder = build_embedder(mc)
        self.generator = build_generator(mc)
        self.discriminator = build_discriminator(mc)
        self.videos = VideoEmbeddings(n_videos, mc.embed_dim)
        fmt = torch.channels_last if cfg.channels_last and device.type == "cuda" else torch.contiguous_format
        for m in (self.embedder, self.generator, self.discriminator, self.videos):
            m.to(device=device, memory_format=fmt)
        self.memory_format = fmt
        self.content = ContentLoss(cfg.loss).to(device)
        self.eg: nn.Module = EmbedGenerate(self.embedder, self.generator)
        self.d: nn.Module = self.discriminator
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.eg = DDP(self.eg, device_ids=ids)
            self.d = DDP(self.d, device_ids=ids)
        use_compile = cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda")
        self._eg_fn = torch.compile(self.eg) if use_compile else self.eg
        self._d_fn = torch.compile(self.d) if use_compile else self.d
        self._d_raw = torch.compile(self.discriminator) if use_compile else self.discriminator
        oc = cfg.optim
        betas = (oc.beta1, oc.beta2)
        self.opt_g = torch.optim.Adam([*self.embedder.parameters(), *self.generator.parameters()], lr=oc.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam([*self.discriminator.parameters(), *self.videos.parameters()], lr=oc.lr_d, betas=betas)
        amp = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
        if amp not in ("bf16", "off"):
            raise InputError(f"amp must be bf16, off or auto, got {amp!r}")
        self.amp_dtype = torch.bfloat16 if amp == "bf16" else None

    # -- state --------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"embedder": self.embedder, "generator": self.generator, "discriminator": self.discriminator,
                "videos": self.videos}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in batch.items():
            v = v.to(self.device, non_blocking=True)
            if v.ndim == 4:
                v = v.contiguous(memory_format=self.memory_format)
            out[k] = v
        return out

    # -- one step -----------------------------------------------------------------------------------
    def _views(self, images: torch.Tensor, sketch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames and the target sketch as the discriminator sees them (warp: at ``disc_resolution``)."""
        if not self.warp:
            return images, sketch
        res = self.discriminator.cfg.resolution
        return area(images, res), _bilinear(sketch, res)

    def adversarial_on(self, step: int) -> bool:
        """Whether step ``step`` (0-based) trains with the discriminator."""
        return not self.warp or step >= self.cfg.adversarial_from

    def step(self, batch: dict[str, torch.Tensor], step: int = 0) -> tuple[dict[str, float], torch.Tensor]:
        """One generator update and ``d_steps`` discriminator updates; returns the losses and the fake batch."""
        cfg = self.cfg
        lc = cfg.loss
        b = self._to_device(batch)
        video = b["video"]
        n = video.shape[0]
        real = b["target"]
        adv_on = self.adversarial_on(step)
        # generator step (the discriminator's weights are fixed here: frozen, and called outside DDP)
        self.discriminator.requires_grad_(False)
        with self._autocast():
            fake, e_hat, aux = self._eg_fn(b["frames"], b["sketches"], b["target_sketch"], b.get("prior"))
        fake32 = fake.float()
        lres = lc.resolution or fake.shape[-1]
        content, parts = self.content(area(fake32, lres), area(real, lres), face=step % max(1, lc.face_every) == 0)
        losses: dict[str, torch.Tensor] = {"content": content}
        loss_g = content
        if lc.l1 > 0:
            losses["l1"] = F.l1_loss(fake32, real)
            loss_g = loss_g + lc.l1 * losses["l1"]
        if lc.ssim > 0:
            losses["ssim"] = ssim_loss(fake32, real)
            loss_g = loss_g + lc.ssim * losses["ssim"]
        if lc.region_l1 > 0 and "region" in b:
            losses["region_l1"] = region_l1(fake32, real, b["region"])
            loss_g = loss_g + lc.region_l1 * losses["region_l1"]
        if "flow_delta" in aux and lc.smoothness > 0:
            losses["smoothness"] = total_variation(aux["flow_delta"].float())
            loss_g = loss_g + lc.smoothness * losses["smoothness"]
        if "blend" in aux and "region" in b:
            losses["gen_outside"] = generated_outside(aux["blend"], b["region"])
            if lc.gen_outside > 0:
                loss_g = loss_g + lc.gen_outside * losses["gen_outside"]
        if "blend" in aux and "visible" in b:
            losses["gen_visible"] = generated_inside(aux["blend"], b["visible"])
            loss_g = loss_g + lc.gen_visible * losses["gen_visible"]
        if adv_on:
            d_in, d_sketch = self._views(torch.cat([fake, real]), b["target_sketch"])
            with self._autocast():
                w = self.videos(video)
                scores, feats = self._d_raw(d_in, d_sketch.repeat(2, 1, 1, 1), w.detach().repeat(2, 1))
            losses["adversarial"] = generator_hinge(scores[:n].float())
            losses["feature_matching"] = feature_matching([f[:n].float() for f in feats], [f[n:].float() for f in feats])
            losses["match"] = embedding_match(w.float(), e_hat.float())
            loss_g = loss_g + lc.adversarial * losses["adversarial"] + lc.feature_matching * \
                losses["feature_matching"] + lc.match * losses["match"]
        losses["g_total"] = loss_g
        self._check(loss_g, "generator loss")
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_g.backward()  # also gives W its embedding-match gradient, applied in the discriminator step
        self.opt_g.step()
        self.discriminator.requires_grad_(True)
        # discriminator step(s) on the detached fake
        fake_d = fake.detach()
        for _ in range(cfg.optim.d_steps if adv_on else 0):
            d_in, d_sketch = self._views(torch.cat([real, fake_d]), b["target_sketch"])
            with self._autocast():
                scores_d, _ = self._d_fn(d_in, d_sketch.repeat(2, 1, 1, 1), self.videos(video).repeat(2, 1))
            loss_d = discriminator_hinge(scores_d[:n].float(), scores_d[n:].float())
            self._check(loss_d, "discriminator loss")
            loss_d.backward()
            sync_rows(self.videos.weight, video, self.dist)
            self.opt_d.step()
            self.opt_d.zero_grad(set_to_none=True)
            losses.update({"d_hinge": loss_d, "d_real": scores_d[:n].float().mean(),
                           "d_fake": scores_d[n:].float().mean()})
        losses.update({f"content_{k}": v for k, v in parts.items()})
        return {k: float(v.detach()) for k, v in losses.items()}, fake_d

    def _check(self, loss: torch.Tensor, what: str) -> None:
        if not torch.isfinite(loss.detach()).all():
            raise TrainingDiverged(f"{what} became {float(loss.detach())}")

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Feed-forward generation of an episode batch's targets, for sample grids: ``(B, 3, S, S)``."""
        was = self.embedder.training, self.generator.training
        self.embedder.eval()
        self.generator.eval()
        eg = EmbedGenerate(self.embedder, self.generator)
        try:
            with self._autocast():
                b = {k: v.to(self.device) for k, v in batch.items()}
                return eg(b["frames"], b["sketches"], b["target_sketch"], b.get("prior"))[0].float()
        finally:
            self.embedder.train(was[0])
            self.generator.train(was[1])


@dataclass
class TrainResult:
    steps_done: int
    last_step: int
    losses: dict[str, float]
    images_per_second: float
    checkpoint: Path | None


def make_episodes(cfg: TrainConfig, data: PreparedDataset, seed: int, flip: bool, use_photos: bool) -> EpisodeDataset:
    """The episode sampler of the configured architecture."""
    mc = cfg.model
    if mc.arch == "warp":
        return WarpEpisodeDataset(data, mc.resolution, cfg.k, seed, flip, use_photos, mc.motion_resolution,
                                  cfg.cross_clip, cfg.open_mouth, mc.head_ring, cfg.colour_jitter,
                                  visible=cfg.loss.gen_visible > 0)
    return EpisodeDataset(data, mc.resolution, cfg.k, seed, flip, use_photos)


def _collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _loader(episodes: EpisodeDataset, cfg: TrainConfig, start_step: int, info: DistInfo) -> Iterator[dict[str, torch.Tensor]]:
    sampler = SampleNumbers(cfg.batch_size, start_step, info.rank, info.world, steps=cfg.steps)
    loader = DataLoader(episodes, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                        collate_fn=_collate, pin_memory=torch.cuda.is_available(),
                        persistent_workers=False, prefetch_factor=4 if cfg.workers > 0 else None)
    return iter(loader)


def _val_rows(learner: MetaLearner, episodes: EpisodeDataset | None, n: int) -> list[tuple[torch.Tensor, ...]]:
    if episodes is None:
        return []
    items = [episodes[i] for i in range(n)]
    batch = _collate(items)
    fake = learner.generate(batch).cpu()
    return [sample_row(batch, fake, i) for i in range(len(items))]


def sample_row(batch: dict[str, torch.Tensor], fake: torch.Tensor, i: int) -> tuple[torch.Tensor, ...]:
    """(first source | target sketch | real target | generated) at the frames' size."""
    size = batch["frames"].shape[-1]
    sketch = _bilinear(batch["target_sketch"][i : i + 1].float(), size)[0]
    return batch["frames"][i, 0], sketch, batch["target"][i], fake[i]


def _init_from_model(learner: MetaLearner, cfg: TrainConfig, log: Callable[[str], None]) -> None:
    """Copy the embedder, generator and discriminator of ``cfg.init`` into a fresh learner (step 0)."""
    from talkinghead.models.bundle import load_model

    bundle = load_model(cfg.init)
    if to_dict(bundle.config) != to_dict(cfg.model):
        diff = sorted(k for k, v in to_dict(cfg.model).items() if to_dict(bundle.config).get(k) != v)
        raise InputError(f"--init {cfg.init}: its model settings differ from this run's ({', '.join(diff)}); "
                         "use the same preset")
    if bundle.kind != "model":
        raise InputError(f"--init {cfg.init} is a fine-tuned person file; give a meta-learned model")
    parts = {"embedder": bundle.embedder, "generator": bundle.generator, "discriminator": bundle.discriminator}
    loaded = []
    for name, src in parts.items():
        if src is not None:
            getattr(learner, name).load_state_dict(src.state_dict())
            loaded.append(name)
    log(f"initialised the {', '.join(loaded)} from {cfg.init}")


def train(
    cfg: TrainConfig,
    data_dir: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Meta-learn on a prepared dataset; checkpoints, samples and logs go to ``run_dir``."""
    log = log or (lambda m: print(m, file=sys.stderr))
    run_dir = Path(run_dir)
    device = resolve_device(cfg.device)
    info = init_distributed(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    try:
        return _train(cfg, Path(data_dir), run_dir, resume, progress and info.is_main, log, device, info)
    finally:
        shutdown_distributed()


def _train(cfg: TrainConfig, data_dir: Path, run_dir: Path, resume: bool, progress: bool,
           log: Callable[[str], None], device: torch.device, info: DistInfo) -> TrainResult:
    ckpt = latest_checkpoint(run_dir) if resume else None
    if resume and ckpt is None:
        log(f"no checkpoint in {run_dir}: starting from scratch")
    if not resume and ckpt is None and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise InputError(f"{run_dir} already holds checkpoints: pass --resume to continue, or choose another --out")
    model_t: dict[str, torch.Tensor] = {}
    optim_t: dict[str, torch.Tensor] = {}
    state: dict[str, Any] = {}
    if ckpt is not None:
        model_t, optim_t, state = read_checkpoint(ckpt)
        saved = from_dict(TrainConfig, state["config"])
        if to_dict(saved.model) != to_dict(cfg.model):
            raise InputError(f"the model settings differ from the checkpoint's in {ckpt}; resume with the same preset")
    data = PreparedDataset(data_dir, split="train")
    if data.size < cfg.model.resolution and info.is_main:
        log(f"note: the dataset's crops are {data.size}², the model works at {cfg.model.resolution}²: frames are "
            f"upscaled, so the model learns to paint blurred faces; prepare with --size {cfg.model.resolution} "
            f"(or train with --set model.resolution={data.size})")
    if ckpt is not None:
        keys = state["videos"]
        by_key = {c.key: c for c in data.clips}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise InputError(f"{len(missing)} training video(s) of the checkpoint are not in {data_dir} (e.g. {missing[0]})")
        data.clips = [by_key[k] for k in keys]
    episodes = make_episodes(cfg, data, cfg.seed, cfg.flip, cfg.use_photos)
    keys = episodes.keys
    dhash = data_hash(keys, data)
    if state.get("data_hash") not in (None, dhash):
        raise InputError(f"the dataset in {data_dir} differs from the one this run was trained on")
    val_eps: EpisodeDataset | None = None
    try:
        val = PreparedDataset(data_dir, split=cfg.val_split)
        if len(val):
            val_eps = make_episodes(cfg, val, seed=12345, flip=False, use_photos=False)
    except (InputError, ValueError):
        val_eps = None

    learner = MetaLearner(cfg, len(keys), device, info)
    start = 0
    if ckpt is not None:
        load_modules(model_t, learner.modules())
        start = int(state["step"])
        if optim_t:
            for name, opt in learner.optimizers().items():
                load_optimizer(name, opt, optim_t, state["optimizers"][name])
            restore_rng(optim_t)
            log(f"resumed from {ckpt} at step {start}")
        else:  # a checkpoint committed without optim.safetensors (weights only, to keep a repository light)
            log(f"resumed from {ckpt} at step {start} (weights only: no optim.safetensors, so Adam's moments and the "
                "RNG state start afresh; episodes still follow the step)")
    elif cfg.init:
        _init_from_model(learner, cfg, log)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(to_dict(cfg), indent=1))
    writer = None
    if info.is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start + 1)
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            writer = None

    def checkpoint(step: int) -> Path | None:
        if not info.is_main:
            return None
        st = {"config": to_dict(cfg), "data_hash": dhash, "videos": keys, "data": str(data_dir)}
        return save_checkpoint(run_dir, step, learner.modules(), learner.optimizers(), st, cfg.keep_checkpoints)

    last_ckpt = ckpt
    losses: dict[str, float] = {}
    metrics_path = run_dir / "metrics.jsonl"
    bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    images = 0
    step = start
    try:
        for batch in _loader(episodes, cfg, start, info):
            losses, fake = learner.step(batch, step)
            step += 1
            images += batch["video"].shape[0] * info.world
            rate = images / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(g=f"{losses['g_total']:.3f}", d=f"{losses.get('d_hinge', math.nan):.3f}",
                            img_s=f"{rate:.1f}")
            if info.is_main and (step % cfg.log_every == 0 or step == cfg.steps):
                rec = {"step": step, "images_per_second": rate, **losses}
                with metrics_path.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                if writer is not None:
                    for k, v in losses.items():
                        writer.add_scalar(f"loss/{k}", v, step)
                    writer.add_scalar("speed/images_per_second", rate, step)
            if info.is_main and (step % cfg.sample_every == 0 or step == cfg.steps):
                k = min(4, fake.shape[0])
                rows = [sample_row(batch, fake.cpu(), i) for i in range(k)]
                rows += _val_rows(learner, val_eps, 4)
                save_grid(run_dir / "samples" / f"step-{step:08d}.png", rows)
            out_of_time = cfg.max_minutes > 0 and any_rank(time.perf_counter() - t0 > 60 * cfg.max_minutes, info,
                                                           device)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
                last_ckpt = checkpoint(step) or last_ckpt
            if out_of_time:
                log(f"stopped at step {step}: the time limit of {cfg.max_minutes:g} min is reached "
                    "(--resume goes on from the checkpoint)")
                break
    except TrainingDiverged as exc:
        where = f"; the last good checkpoint is {last_ckpt}" if last_ckpt else "; no checkpoint was written yet"
        raise TrainingDiverged(f"training stopped at step {step + 1}: {exc}{where}") from None
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - t0
    return TrainResult(step - start, step, losses, images / elapsed if elapsed > 0 else math.nan, last_ckpt)
