"""Does fine-tuning beat feed-forward, and which part of the warp generator should learn the person? Prints figures;
asserts nothing.

On the evaluation protocol's identities, sources and targets (``talkinghead evaluate``: T sources from one clip,
driving frames from another clip of the person, aligned onto the first source, the real frame warped alike being
the ground truth; with one clip, its later frames as they are), per identity: SSIM and PSNR at 256² of
feed-forward and of fine-tuning ``--steps`` steps with each of ``--parts`` (``all``: G's weights and ψ′, the
default; ``decoder``: G without its source encoder and motion network; ``adain``: ψ′ alone), and the means.

    .venv/bin/python benchmarks/finetune_parts.py --data /tmp/ds/corpus256 [--shots 1,8] [--parts all,decoder,adain]
        [--steps 20] [--frames-per-identity 8] [--model FILE]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from talkinghead.data.dataset import PreparedDataset
from talkinghead.evaluation import metrics as M
from talkinghead.evaluation.protocol import generate, load_identities
from talkinghead.inference.animate import Animator
from talkinghead.models.bundle import load_model
from talkinghead.training.finetune import finetune


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--shots", default="1,8")
    ap.add_argument("--parts", default="all,decoder,adain")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--frames-per-identity", type=int, default=8)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    shots = [int(s) for s in args.shots.split(",")]
    parts = args.parts.split(",")
    torch.manual_seed(0)
    np.random.seed(0)
    bundle = load_model(args.model)
    people = load_identities(PreparedDataset(args.data, args.split), max(shots), args.frames_per_identity, None)
    methods = ["ff", *(f"ft-{p}" for p in parts)]
    means: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    print(f"{args.split} split, {len(people)} identities, {args.frames_per_identity} frames each, {args.steps} steps")
    print("| T | identity | " + " | ".join(f"{m} SSIM / PSNR" for m in methods) + " | FT seconds |")
    print("|---" * (len(methods) + 3) + "|")
    for t in shots:
        for person in people:
            faces = person.sources(t)
            targets, real = person.self_targets(faces[0])
            cells, seconds = [], []
            for method in methods:
                model = bundle
                if method != "ff":
                    res = finetune(bundle, np.stack([f.crop for f in faces]), np.stack([f.landmarks for f in faces]),
                                   args.steps, progress=False, parts=method[3:])
                    model = res.bundle
                    seconds.append(res.seconds)
                anim = Animator(model, device="cpu")
                anim.set_faces(faces, 0, progress=False)
                imgs = generate(anim, targets)
                s = float(np.mean([M.ssim(g, r) for g, r in zip(imgs, real, strict=True)]))
                p = float(np.mean([M.psnr(g, r) for g, r in zip(imgs, real, strict=True)]))
                means[(t, method)].append((s, p))
                cells.append(f"{s:.4f} / {p:.2f}")
            print(f"| {t} | {person.name} | " + " | ".join(cells) + f" | {np.mean(seconds):.0f} |", flush=True)
        row = [np.mean(means[(t, m)], 0) for m in methods]
        print(f"| {t} | **mean** | " + " | ".join(f"{s:.4f} / {p:.2f}" for s, p in row) + " | |", flush=True)


if __name__ == "__main__":
    main()
