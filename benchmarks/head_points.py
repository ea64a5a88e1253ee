"""The landmark flow with and without the head points (``model.head_ring``): how well the thin-plate warp alone,
without the network, moves a frame onto another frame of the same clip. Prints figures; asserts nothing.

For random pairs of frames of one clip (the source and the real target), the source is warped by the flow from the
target's landmarks to its own (:func:`~talkinghead.faces.warp.tps_grid`, on the generator's 64² grid) with each
``--radius`` (0 = the 68 landmarks and the border alone), and compared with the real target: SSIM (grey, 7x7
windows) over the whole frame, outside the target's face (the hull of its landmarks: hair, neck, background), and
for the quarter of the pairs whose landmarks moved most. The same pairs for every radius.

    .venv/bin/python benchmarks/head_points.py --data /tmp/ds/new256 [--split all] [--clips 60] [--pairs 3]
        [--radius 0 1.2] [--seed 0]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from talkinghead.data.dataset import PreparedDataset
from talkinghead.faces.warp import tps_grid, warp_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="all")
    ap.add_argument("--clips", type=int, default=60, help="clips drawn at random (default 60)")
    ap.add_argument("--pairs", type=int, default=3, help="pairs of frames per clip (default 3)")
    ap.add_argument("--radius", type=float, nargs="+", default=[0.0, 1.2])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    data = PreparedDataset(args.data, args.split)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(data))
    rows = []  # per pair: motion, then (whole, outside) per radius
    for i in order[: args.clips]:
        clip = data[int(i)]
        if clip.n_frames < 50:  # photos and very short clips: no motion to speak of
            continue
        for _ in range(args.pairs):
            a, b = (int(x) for x in rng.integers(0, clip.n_frames, 2))
            frames, lmk = clip.read([a, b])
            if not np.isfinite(lmk).all():
                continue
            size = frames.shape[1]
            src, real = frames[0], cv2.cvtColor(frames[1], cv2.COLOR_RGB2GRAY)
            face = np.zeros((size, size), np.uint8)
            cv2.fillConvexPoly(face, cv2.convexHull(lmk[1].astype(np.int32)), 1)
            row = [float(np.abs(lmk[1] - lmk[0]).mean())]
            for r in args.radius:
                warped = warp_image(src, tps_grid(lmk[1], lmk[0], size, 64, head=r))
                _, full = structural_similarity(cv2.cvtColor(warped, cv2.COLOR_RGB2GRAY), real, data_range=255,
                                                full=True)
                row += [float(full.mean()), float(full[face == 0].mean())]
            rows.append(row)
    res = np.array(rows)
    big = res[:, 0] > np.percentile(res[:, 0], 75)
    print(f"{len(res)} pairs from {args.split} clips of {args.data} (seed {args.seed}); SSIM of the warped source "
          "to the real frame")
    print("| radius | whole frame | outside the face | whole frame, the quarter that moved most |")
    print("|---|---|---|---|")
    for j, r in enumerate(args.radius):
        whole, outside = res[:, 1 + 2 * j], res[:, 2 + 2 * j]
        print(f"| {r:g} | {whole.mean():.4f} | {outside.mean():.4f} | {whole[big].mean():.4f} |")


if __name__ == "__main__":
    main()
