"""Model files: one ``.safetensors`` holding the networks, with the config and provenance as JSON metadata.

Two kinds share the format:

- ``kind="model"`` (meta-learned): embedder, generator, discriminator (w₀, b; no per-video W) — animates anyone
  feed-forward, and is the starting point of fine-tuning.
- ``kind="person"`` (fine-tuned): generator, discriminator, the person's AdaIN parameters ψ′ and discriminator
  column w′ — animates that person; written by ``talkinghead finetune``.

Loading never unpickles anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize

from talkinghead.config import ModelConfig, from_dict, to_dict
from talkinghead.errors import InputError
from talkinghead.io.atomic import atomic_path
from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.factory import build_discriminator, build_embedder, build_generator

FORMAT = "talkinghead-model"


@dataclass
class ModelBundle:
    config: ModelConfig
    generator: nn.Module
    """:class:`~talkinghead.models.generator.Generator` (arch "synthesis") or
    :class:`~talkinghead.models.warp_generator.WarpGenerator` (arch "warp")."""
    discriminator: Discriminator | None = None
    embedder: Embedder | None = None
    psi: torch.Tensor | None = None
    """ψ′ ``(1, psi_dim)``: the fine-tuned person's AdaIN parameters (kind "person")."""
    w: torch.Tensor | None = None
    """w′ ``(embed_dim,)``: the fine-tuned person's discriminator column (kind "person")."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "person" if self.psi is not None else "model"

    def to(self, device: torch.device | str) -> ModelBundle:
        for m in (self.generator, self.discriminator, self.embedder):
            if m is not None:
                m.to(device)
        if self.psi is not None:
            self.psi = self.psi.to(device)
        if self.w is not None:
            self.w = self.w.to(device)
        return self


def clone_network(module: nn.Module) -> nn.Module:
    """An independent copy of an embedder, generator or discriminator.

    Not ``copy.deepcopy``: spectral-norm parametrisations live on per-module classes that a deep copy shares,
    so baking the copy would break the original.
    """
    fresh = type(module)(module.cfg)  # type: ignore[call-arg]
    fresh.load_state_dict(module.state_dict())
    return fresh.to(next(module.parameters()).device).train(module.training)


def bake_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-norm parametrisation by its current value W/σ (for fast inference and export)."""
    module.eval()
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


def save_bundle(path: str | Path, bundle: ModelBundle, half: bool = False, extra: dict[str, Any] | None = None) -> Path:
    """Write a bundle atomically (``half``: store floating tensors as fp16, half the size)."""
    tensors: dict[str, torch.Tensor] = {}
    parts = {"generator": bundle.generator, "discriminator": bundle.discriminator, "embedder": bundle.embedder}
    for prefix, module in parts.items():
        if module is not None:
            for k, v in module.state_dict().items():
                tensors[f"{prefix}.{k}"] = v
    if bundle.psi is not None:
        tensors["person.psi"] = bundle.psi
    if bundle.w is not None:
        tensors["person.w"] = bundle.w
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point() and not k.endswith(("_u", "_v")):
            v = v.half()
        out[k] = v.clone()
    meta = {**bundle.meta, **(extra or {})}
    header = {"format": FORMAT, "kind": bundle.kind, "config": json.dumps(to_dict(bundle.config)),
              "meta": json.dumps(meta)}
    path = Path(path)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(out, str(tmp), metadata=header)
    return path


def load_bundle(path: str | Path, device: torch.device | str = "cpu") -> ModelBundle:
    """Read a model or person file (fp16 tensors come back as fp32)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{path} is not a talkinghead model file ({exc.__class__.__name__})") from None
    if header.get("format") != FORMAT:
        raise InputError(f"{path} is not a talkinghead model file (format {header.get('format')!r})")
    try:
        cfg = from_dict(ModelConfig, json.loads(header["config"]))
    except (InputError, ValueError, TypeError) as exc:
        raw = json.loads(header.get("config", "{}"))
        arch = raw.get("arch") or (raw.get("model") or {}).get("arch", "synthesis")
        raise InputError(f"{path}: cannot read this {arch!r} model with talkinghead {_version()} ({exc})") from None
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}

    def part(prefix: str, module: nn.Module) -> nn.Module | None:
        sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        if not sub:
            return None
        try:
            module.load_state_dict(sub)
        except RuntimeError:
            raise InputError(f"{path}: its {prefix} does not match the {cfg.arch!r} architecture of this version "
                             f"of talkinghead") from None
        return module

    generator = part("generator", build_generator(cfg))
    if generator is None:
        raise InputError(f"{path} holds no generator")
    bundle = ModelBundle(
        config=cfg,
        generator=generator,  # type: ignore[arg-type]
        discriminator=part("discriminator", build_discriminator(cfg)),  # type: ignore[arg-type]
        embedder=part("embedder", build_embedder(cfg)),  # type: ignore[arg-type]
        psi=tensors.get("person.psi"),
        w=tensors.get("person.w"),
        meta=json.loads(header.get("meta", "{}")),
    )
    if bundle.kind == "model" and bundle.embedder is None:
        raise InputError(f"{path} holds neither an embedder nor a fine-tuned person")
    return bundle.to(device)


def bundle_from_checkpoint(ckpt_dir: str | Path) -> ModelBundle:
    """The networks of a training checkpoint folder (without the per-video W)."""
    from talkinghead.config import TrainConfig
    from talkinghead.training.checkpoint import read_checkpoint

    model_t, _, state = read_checkpoint(Path(ckpt_dir))
    cfg = from_dict(TrainConfig, state["config"]).model
    nets = {"embedder": build_embedder(cfg), "generator": build_generator(cfg), "discriminator": build_discriminator(cfg)}
    for prefix, module in nets.items():
        module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in model_t.items() if k.startswith(prefix + ".")})
    meta = {"step": state["step"], "data_hash": state.get("data_hash"), "n_videos": len(state.get("videos", [])),
            "train_config": state["config"]}
    return ModelBundle(cfg, nets["generator"], nets["discriminator"], nets["embedder"], meta=meta)  # type: ignore[arg-type]


def _version() -> str:
    from talkinghead import __version__

    return __version__


def load_model(path: str | Path | None = None, device: torch.device | str = "cpu") -> ModelBundle:
    """A model from a ``.safetensors`` file, a checkpoint folder, a training run folder (its newest checkpoint),
    or, with ``None``, the default model shipped with the package."""
    if path is None:
        from talkinghead.assets import default_model_path

        return load_bundle(default_model_path(), device)
    p = Path(path)
    if p.is_file() and p.name == "model.safetensors" and (p.parent / "state.json").is_file():
        p = p.parent  # a checkpoint's own model.safetensors: its config is the run's, read with the checkpoint
    if p.is_dir():
        from talkinghead.training.checkpoint import latest_checkpoint

        ckpt = p if (p / "state.json").is_file() else latest_checkpoint(p)
        if ckpt is None:
            raise InputError(f"{p} holds no checkpoint")
        return bundle_from_checkpoint(ckpt).to(device)
    return load_bundle(p, device)
