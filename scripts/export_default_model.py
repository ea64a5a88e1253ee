"""Write src/talkinghead/assets/default.safetensors (fp16) from a training run's newest checkpoint.

    .venv/bin/python scripts/export_default_model.py runs/tiny-cpu [--step N] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from talkinghead.models.bundle import bundle_from_checkpoint, save_bundle
from talkinghead.training.checkpoint import latest_checkpoint, list_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--step", type=int)
    ap.add_argument("--out", type=Path, help="write here instead of the package's default model")
    args = ap.parse_args()
    run = Path(args.run)
    ckpt = latest_checkpoint(run) if args.step is None else \
        next(p for p in list_checkpoints(run) if p.name.endswith(f"{args.step:08d}"))
    bundle = bundle_from_checkpoint(ckpt)
    out = args.out or ROOT / "src" / "talkinghead" / "assets" / "default.safetensors"
    save_bundle(out, bundle, half=True, extra={"checkpoint": ckpt.name, "run": run.name})
    print(f"wrote {out} from {ckpt} ({out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
