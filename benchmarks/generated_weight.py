"""How much of a closed mouth and of the eyes the warp generator paints itself when the head moves. Prints figures;
asserts nothing.

The blend gives each output pixel to the warped source, the unwarped source or the decoder's generated pixels.
Generated pixels belong where no warp of the photo shows the truth (an opening mouth, the eyes); on closed lips they
carry the colours of the training faces rather than the person's (a painted face's red lips turn grey-pink). For
each source photo and model this moves the photo's own landmarks (closed mouth as in the photo) by a rotation and
a shift, renders that target, and prints the mean generated weight over the lips (outer lip contour, 48-59), over
the eyes (36-47), and over the whole crop.

    .venv/bin/python benchmarks/generated_weight.py --source PHOTO [PHOTO ...] [--model FILE|shipped ...]
        [--degrees 8] [--shift 6 12]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from talkinghead.inference.animate import Animator

LIPS = list(range(48, 60))
EYES = (list(range(36, 42)), list(range(42, 48)))


def moved(lmk: np.ndarray, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """The landmarks rotated about their centre and shifted (pixels)."""
    c = lmk.mean(0)
    th = np.deg2rad(degrees)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], np.float32)
    return ((lmk - c) @ rot.T + c + np.asarray(shift, np.float32)).astype(np.float32)


def polygon(points: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", nargs="+", required=True)
    ap.add_argument("--model", nargs="+", default=["shipped"])
    ap.add_argument("--degrees", type=float, default=8.0)
    ap.add_argument("--shift", type=float, nargs=2, default=(6.0, 12.0))
    args = ap.parse_args()
    print(f"generated weight, target = the photo's landmarks turned {args.degrees}° and shifted {args.shift} px")
    print("| model | source | lips | eyes | whole crop |")
    print("|---|---|---|---|---|")
    for m in args.model:
        anim = Animator(None if m == "shipped" else m, device="cpu")
        for src in args.source:
            face = anim.set_source([src], progress=False)[0]
            target = moved(face.landmarks, args.degrees, tuple(args.shift))  # 256² crop pixels
            w = cv2.resize(anim.render_layers(target[None]).weights[0, 2], face.crop.shape[:2][::-1])
            s = w.shape[0]
            lips = polygon(target[LIPS], s)
            eyes = polygon(target[EYES[0]], s) | polygon(target[EYES[1]], s)
            print(f"| {Path(m).name} | {Path(src).name} | {w[lips].mean():.3f} | {w[eyes].mean():.3f} | "
                  f"{w.mean():.4f} |", flush=True)


if __name__ == "__main__":
    main()
