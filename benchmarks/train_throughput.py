"""Meta-learning throughput per preset: images/s, peak memory, and FLOPs per training image.

    .venv/bin/python benchmarks/train_throughput.py [--presets tiny,small,paper] [--steps 3] [--device cpu|cuda]

Each preset runs in its own process (so peak memory is its own) on synthetic episodes (random frames and real
sketch statistics do not change the cost). "images" are episodes: K source frames + one target. FLOPs are counted
with torch's FlopCounterMode for one episode's forward and backward passes (all networks, losses included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def measure(preset: str, steps: int, device: str, batch: int | None) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    from talkinghead.api import train_config
    from talkinghead.training.metalearn import MetaLearner

    over = {"device": device}
    if batch:
        over["batch_size"] = batch
    cfg = train_config(preset, **over)
    dev = torch.device(device)
    learner = MetaLearner(cfg, 100, dev)
    s, k, b = cfg.model.resolution, cfg.k, cfg.batch_size

    def episode_batch(n: int) -> dict[str, torch.Tensor]:
        return {"frames": torch.rand(n, k, 3, s, s) * 2 - 1, "sketches": torch.rand(n, k, 3, s, s) * 2 - 1,
                "target": torch.rand(n, 3, s, s) * 2 - 1, "target_sketch": torch.rand(n, 3, s, s) * 2 - 1,
                "video": torch.arange(n) % 100}

    fc = FlopCounterMode(display=False)
    with fc:
        learner.step(episode_batch(1))
    flops = fc.get_total_flops()
    data = episode_batch(b)
    learner.step(data)  # warm-up (and compilation on GPU)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        learner.step(data)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = {"preset": preset, "device": device, "batch": b, "k": k, "resolution": s,
           "images_per_s": steps * b / dt, "gflop_per_image": flops / 1e9,
           "achieved_tflops": steps * b * flops / dt / 1e12,
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if dev.type == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,small,paper")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=0, help="episodes per step (default: the preset's)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.device, args.batch or None)))
        return
    print(f"{'preset':<8}{'device':<7}{'res':>5}{'batch':>6}{'img/s':>9}{'GFLOP/img':>11}{'TFLOP/s':>9}{'peak mem':>12}")
    for preset in args.presets.split(","):
        r = subprocess.run([sys.executable, __file__, "--one", preset, "--steps", str(args.steps), "--device",
                            args.device, "--batch", str(args.batch)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{preset:<8} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
            continue
        m = json.loads(r.stdout.strip().splitlines()[-1])
        mem = f"{m['peak_gpu_gib']:.1f} GiB GPU" if "peak_gpu_gib" in m else f"{m['peak_rss_gib']:.1f} GiB RSS"
        print(f"{m['preset']:<8}{m['device']:<7}{m['resolution']:>5}{m['batch']:>6}{m['images_per_s']:>9.2f}"
              f"{m['gflop_per_image']:>11.1f}{m['achieved_tflops']:>9.3f}{mem:>12}")


if __name__ == "__main__":
    main()
