"""Write src/talkinghead/assets/default.safetensors (fp16) from a training run's newest checkpoint, or from the mean
of its checkpoints' weights from one step on (``--average-from``: a running average along the run, which scores
better on validation than any one of them; see MODEL_CARD.md).

    .venv/bin/python scripts/export_default_model.py runs/tiny-cpu [--step N] [--average-from M] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from talkinghead.models.bundle import ModelBundle, bundle_from_checkpoint, save_bundle
from talkinghead.training.checkpoint import latest_checkpoint, list_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def checkpoint_step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[-1])


def average_bundles(bundles: list[ModelBundle]) -> ModelBundle:
    """The first bundle with every floating-point weight and buffer replaced by the mean over ``bundles``."""
    first = bundles[0]
    for name in ("generator", "discriminator", "embedder"):
        nets = [getattr(b, name) for b in bundles]
        if nets[0] is None:
            continue
        states = [n.state_dict() for n in nets]
        mean = {k: (torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v)
                for k, v in states[0].items()}
        nets[0].load_state_dict(mean)
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--step", type=int, help="the checkpoint (default: the newest)")
    ap.add_argument("--average-from", type=int, help="average the checkpoints from this step to --step")
    ap.add_argument("--out", type=Path, help="write here instead of the package's default model")
    args = ap.parse_args()
    run = Path(args.run)
    ckpt = latest_checkpoint(run) if args.step is None else \
        next(p for p in list_checkpoints(run) if checkpoint_step(p) == args.step)
    if ckpt is None:
        raise SystemExit(f"no checkpoint in {run}")
    extra = {"checkpoint": ckpt.name, "run": run.name}
    if args.average_from is None:
        bundle = bundle_from_checkpoint(ckpt)
    else:
        chosen = [p for p in list_checkpoints(run) if args.average_from <= checkpoint_step(p) <= checkpoint_step(ckpt)]
        bundle = average_bundles([bundle_from_checkpoint(p) for p in chosen])
        extra["averaged"] = [p.name for p in chosen]
    out = args.out or ROOT / "src" / "talkinghead" / "assets" / "default.safetensors"
    save_bundle(out, bundle, half=True, extra=extra)
    print(f"wrote {out} from {ckpt}{f' (the mean of {len(chosen)} checkpoints)' if args.average_from else ''} "
          f"({out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
