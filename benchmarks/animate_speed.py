"""Animation speed: frames per second of the generator and of the whole pipeline, per backend.

    .venv/bin/python benchmarks/animate_speed.py [--model FILE] [--frames 100] [--batch 8] [--paper]

"generator" times ``Animator.render`` alone (target landmarks → the networks' inputs — sketches, and for the warp
generator the thin-plate prior flows — → generated 256² crops). "pipeline" times the whole streaming path on the
built-in astronaut driving video: decode → track → relative motion → generate → paste-back into the photo →
watermark → H.264 (plus signing the Content Credentials once at the end). Rows: the shipped model, the warp preset
with random weights (its cost does not depend on the weights), and with ``--paper`` the paper's 256² synthesis
generator.
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
from talkinghead.models.factory import build_discriminator, build_embedder, build_generator


def random_bundle(preset: str) -> ModelBundle:
    cfg = train_config(preset).model
    return ModelBundle(cfg, build_generator(cfg), build_discriminator(cfg), build_embedder(cfg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file (default: the shipped one)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--paper", action="store_true", help="also the paper's 256² generator (about 1 frame/s on a CPU)")
    ap.add_argument("--backends", default="torch,onnx")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="th-anim-"))
    frames, _ = astronaut_video(seconds=args.frames / 25.0, size=384)
    driving = tmp / "driving.mp4"
    with VideoWriter(driving, fps=25.0) as w:
        for f in frames:
            w.write(f)
    shipped = load_model(args.model)
    bundles = {f"shipped ({shipped.config.arch} {shipped.config.resolution}²)": shipped,
               "warp preset (256²)": random_bundle("warp")}
    if args.paper:
        bundles["paper (256²)"] = random_bundle("paper")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{args.frames} driving frames, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"{'model':<28}{'backend':<12}{'generator fps':>15}{'ms/frame':>10}{'pipeline fps':>14}")
    for name, bundle in bundles.items():
        for backend in args.backends.split(","):
            for device in devices if backend == "torch" else ["cpu"]:
                anim = Animator(bundle, device=device, backend=backend)
                faces = anim.set_source([astronaut()], progress=False)
                rng = np.random.default_rng(0)
                targets = np.stack([faces[0].landmarks + rng.normal(0, 1.5, (68, 2)).astype(np.float32)
                                    for _ in range(args.batch)])
                anim.render(targets)  # warm-up (and the ONNX export on first use)
                t0 = time.perf_counter()
                reps = max(1, args.frames // args.batch)
                for _ in range(reps):
                    anim.render(targets)
                gen_fps = reps * args.batch / (time.perf_counter() - t0)
                res = anim.animate(driving, tmp / "out.mp4",
                                   AnimateOptions(batch_size=args.batch, paste_back=True, progress=False))
                label = f"{backend}-{device}" if backend == "torch" else backend
                print(f"{name:<28}{label:<12}{gen_fps:>15.1f}{1000 / gen_fps:>10.1f}{res.frames_per_second:>14.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
