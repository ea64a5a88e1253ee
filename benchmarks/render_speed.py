"""Generator speed on any device, from a prepared dataset (no face detector needed, so it runs on a bare GPU
machine): milliseconds per generated 256² frame at several batch sizes.

    python benchmarks/render_speed.py --data DATASET [--model FILE] [--device cuda] [--batches 1,8,32,64]

The source is frame 0 of the first validation clip (else the first clip); the targets are that clip's landmark
track. Each row times ``Animator.render`` (target landmarks → sketches and thin-plate prior flows → the networks →
uint8 crops back on the host), after two warm-up calls, synchronising the device; fp32 (the backend's precision).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from talkinghead.data.dataset import PreparedDataset
from talkinghead.faces.crop import CropBox
from talkinghead.inference.animate import Animator
from talkinghead.inference.source import SourceFace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", help="model file (default: the shipped one)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    try:
        clip = PreparedDataset(args.data, split="val").clips[0]
    except IndexError:
        clip = PreparedDataset(args.data, split="all").clips[0]
    n = min(clip.n_frames, 64)
    frames, landmarks = clip.read(list(range(n)))
    anim = Animator(args.model, device=args.device)
    face = SourceFace(frames[0], CropBox(0.0, 0.0, float(frames.shape[1])), frames[0], landmarks[0], clip.key)
    anim.set_faces([face])
    dev = anim.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), torch "
          f"{torch.__version__}, source {clip.key}")
    print(f"{'precision':<10}{'batch':>6}{'ms/frame':>10}{'frames/s':>10}")
    for b in (int(x) for x in args.batches.split(",")):
        targets = landmarks[np.arange(b) % n]
        with torch.inference_mode():
            for _ in range(2):
                anim.render(targets)
            sync()
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                out = anim.render(targets)
            sync()
        ms = (time.perf_counter() - t0) / (args.repeats * b) * 1000
        assert out.shape[0] == b
        rows.append({"precision": "fp32", "batch": b, "ms_per_frame": ms, "device": str(dev)})
        print(f"{'fp32':<10}{b:>6}{ms:>10.2f}{1000 / ms:>10.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
