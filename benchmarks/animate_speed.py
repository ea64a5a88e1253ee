"""Animation speed: generated frames per second for torch (CPU/GPU) and ONNX Runtime (CPU) backends.

    .venv/bin/python benchmarks/animate_speed.py [--model FILE] [--frames 100] [--batch 8]

Times the whole streaming pipeline (landmark sketch → generator → upscale → watermark → H.264) on the
built-in astronaut driving video, and, separately, the generator alone. Rows at 128² and 256² use networks
of the small and paper presets with random weights when the shipped model has another resolution (the cost
does not depend on the weights).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from talkinghead.api import train_config
from talkinghead.data.examples import astronaut, astronaut_video
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.io.video import VideoWriter
from talkinghead.models.bundle import ModelBundle, load_model
from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.generator import Generator


def random_bundle(preset: str) -> ModelBundle:
    cfg = train_config(preset).model
    return ModelBundle(cfg, Generator(cfg), Discriminator(cfg), Embedder(cfg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file (default: the shipped one)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="th-anim-"))
    frames, _ = astronaut_video(seconds=args.frames / 25.0, size=384)
    driving = tmp / "driving.mp4"
    with VideoWriter(driving, fps=25.0) as w:
        for f in frames:
            w.write(f)
    shipped = load_model(args.model)
    bundles = {f"shipped ({shipped.config.resolution}²)": shipped, "small (128²)": random_bundle("small"),
               "paper (256²)": random_bundle("paper")}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{args.frames} driving frames, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"{'model':<20}{'backend':<12}{'generator fps':>15}{'pipeline fps':>14}")
    for name, bundle in bundles.items():
        for backend, device in [("torch", d) for d in devices] + [("onnx", "cpu")]:
            anim = Animator(bundle, device=device, backend=backend)
            anim.set_source([astronaut()])
            s = bundle.config.resolution
            sk = np.random.default_rng(0).uniform(-1, 1, (args.batch, 3, s, s)).astype(np.float32)
            anim.backend.generate(sk, anim.psi)  # warm-up
            t0 = time.perf_counter()
            reps = max(1, args.frames // args.batch)
            for _ in range(reps):
                anim.backend.generate(sk, anim.psi)
            gen_fps = reps * args.batch / (time.perf_counter() - t0)
            res = anim.animate(driving, tmp / "out.mp4", AnimateOptions(batch_size=args.batch, progress=False))
            label = f"{backend}-{device}" if backend == "torch" else backend
            print(f"{name:<20}{label:<12}{gen_fps:>15.1f}{res.frames_per_second:>14.1f}")


if __name__ == "__main__":
    main()
