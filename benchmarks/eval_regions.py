"""Where self-reenactment SSIM is won and lost: inside the target's face or outside it. Prints figures; asserts
nothing.

It takes the evaluation protocol's own identities, sources and targets (``talkinghead evaluate``: feed-forward;
driving frames of the source's clip as they are, another clip's aligned onto the source with the real frame warped
alike; ``--align face`` aligns both, the protocol before 2026-11-29) and splits dataset
SSIM's per-pixel map (scikit-image, 7x7 windows, mean over RGB) into

- **face**: the convex hull of the target landmarks grown by 15 % about their centre;
- **outside**: everything else (hair, neck, clothes, background; with driving frames from another clip of the
  person, much of it differs from the source in ways no landmark says).

Per identity and overall it prints whole-frame SSIM for the model and the ``warp`` baseline, the two regions, and
two composites that bound what each region can give:

- **oracle face**: the model's output with the real frame pasted inside the face hull (a perfect face);
- **warp face**: the model's output with the warp baseline pasted inside the face hull.

and, inside the face, a plain thin-plate warp of the first source to the target (the model's motion prior, at its
64² grid, without the network).

    .venv/bin/python benchmarks/eval_regions.py --data /tmp/ds/corpus256 [--split val] [--shots 1]
        [--frames-per-identity 8] [--model FILE] [--align auto|face]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

from talkinghead.data.dataset import PreparedDataset
from talkinghead.evaluation.baselines import get_baseline
from talkinghead.evaluation.protocol import ALIGN, CROP_SIZE, generate, load_identities
from talkinghead.faces.warp import tps_grid, warp_image
from talkinghead.inference.animate import Animator
from talkinghead.models.bundle import load_model

COLUMNS = ("ours", "warp", "oracle face", "warp face", "face: ours", "face: warp", "face: thin-plate",
           "outside: ours", "outside: warp", "face share")


def face_mask(landmarks: np.ndarray, grow: float = 1.15) -> np.ndarray:
    """``(S, S)`` bool: the hull of ``landmarks`` (crop pixels) grown by ``grow`` about their centre."""
    centre = landmarks.mean(0)
    pts = ((landmarks - centre) * grow + centre).astype(np.int32)
    mask = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
    return mask.astype(bool)


def ssim_map(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    value, full = structural_similarity(a, b, channel_axis=-1, data_range=255, full=True)
    return float(value), full.mean(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--frames-per-identity", type=int, default=8)
    ap.add_argument("--model", default=None)
    ap.add_argument("--align", choices=ALIGN, default="auto")
    args = ap.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    bundle = load_model(args.model)
    people = load_identities(PreparedDataset(args.data, args.split), args.shots, args.frames_per_identity, None)
    warp = get_baseline("warp")
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for person in people:
        faces = person.sources(args.shots)
        targets, real = person.self_targets(faces[0], args.align)
        anim = Animator(bundle, device="cpu")
        anim.set_faces(faces, 0, progress=False)
        ours, base = generate(anim, targets), warp(faces, targets)
        for o, w, r, t in zip(ours, base, real, targets, strict=True):
            m = face_mask(t)
            s_o, map_o = ssim_map(o, r)
            s_w, map_w = ssim_map(w, r)
            oracle, mixed = o.copy(), o.copy()
            oracle[m], mixed[m] = r[m], w[m]
            plate = warp_image(faces[0].crop, tps_grid(t, faces[0].landmarks, CROP_SIZE, 64))
            rows[person.name].append([s_o, s_w, ssim_map(oracle, r)[0], ssim_map(mixed, r)[0], map_o[m].mean(),
                                      map_w[m].mean(), ssim_map(plate, r)[1][m].mean(), map_o[~m].mean(),
                                      map_w[~m].mean(), m.mean()])
    print(f"SSIM by region, {args.split} split, T = {args.shots}, feed-forward, {args.frames_per_identity} frames each")
    print("| identity | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    means = []
    for name, vals in rows.items():
        mean = np.mean(vals, 0)
        means.append(mean)
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in mean) + " |")
    print("| **mean** | " + " | ".join(f"{v:.3f}" for v in np.mean(means, 0)) + " |")


if __name__ == "__main__":
    main()
