"""Checkpoints as safetensors plus JSON: never a pickle, so loading a checkpoint cannot run code.

```
RUN/checkpoints/step-00001000/
  model.safetensors     embedder.* generator.* discriminator.* videos.*  (metadata: config JSON)
  optim.safetensors     optimizer tensors: <name>.<param index>.<key>
  state.json            step, config, data hash, video keys, optimizer hyper-parameters, RNG states
```
A checkpoint folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from talkinghead.errors import InputError

STEP_PREFIX = "step-"


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}


def module_tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        for k, v in module.state_dict().items():
            out[f"{prefix}.{k}"] = v
    return _contiguous(out)


def load_modules(tensors: dict[str, torch.Tensor], modules: dict[str, torch.nn.Module], strict: bool = True) -> None:
    for prefix, module in modules.items():
        sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        if not sub and strict:
            raise InputError(f"checkpoint has no weights for {prefix}")
        module.load_state_dict(sub, strict=strict)


def optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{name}.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return _contiguous(tensors), {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith(name + "."):
            _, idx, key = k.split(".", 2)
            state.setdefault(int(idx), {})[key] = v
    for idx, vals in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(vals)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    run_dir: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict[str, Any],
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically; keep only the ``keep`` newest."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{STEP_PREFIX}{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(module_tensors(modules), str(tmp / "model.safetensors"),
              metadata={"format": "talkinghead-model", "config": json.dumps(state.get("config", {}))})
    opt_tensors: dict[str, torch.Tensor] = {}
    opt_meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        t, m = optimizer_tensors(name, opt)
        opt_tensors.update(t)
        opt_meta[name] = m
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    opt_tensors.update({f"rng.{k}": v for k, v in rng.items()})
    save_file(_contiguous(opt_tensors), str(tmp / "optim.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "optimizers": opt_meta}, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(STEP_PREFIX) and (p / "state.json").is_file())


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(model tensors, optimizer tensors, state) of a checkpoint folder."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        model = load_file(str(path / "model.safetensors"))
        optim = load_file(str(path / "optim.safetensors")) if (path / "optim.safetensors").is_file() else {}
    except (OSError, json.JSONDecodeError, RuntimeError) as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc}") from None
    return model, optim, state


def restore_rng(optim_tensors: dict[str, torch.Tensor]) -> None:
    if "rng.torch" in optim_tensors:
        torch.set_rng_state(optim_tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [optim_tensors[f"rng.cuda{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda{i}" in optim_tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
