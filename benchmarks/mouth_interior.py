"""A closed-mouth photo told to open its mouth: what fills the opening? Prints figures; asserts nothing.

A photo with closed lips shows no teeth and no dark of the mouth; a warp can only stretch the lips over the gap.
This benchmark measures how close the output's mouth opening comes to the real one.

For each identity of a prepared split (the evaluation protocol's material, ``talkinghead evaluate``): the source
is the pool's frame with the *most closed* mouth (T = 1, feed-forward); the targets are the driving frames aligned
onto it (the real driving frame, warped alike, is the ground truth) whose mouth is open by at least ``--min-gap``
inter-ocular distances more than the source's. Over the target's inner-lip polygon (landmarks 60-67), per frame:

- **L1**: mean absolute difference from the real frame (0-255, RGB);
- **luma**: the mean brightness of the output inside the polygon minus the real frame's (a stretched lip reads
  positive: lips are brighter than the dark of an open mouth);
- **SSIM** over the mouth's box (the outer lips' bounding box grown by 6 pixels).

For scale: the ``warp`` baseline (a piecewise-affine warp of the same source) and each ``--model`` (default: the
shipped one). Pooled over frames, then per identity.

``+driver``: the model's output with the driving face's mouth interior moved in, as ``animate`` does
(:mod:`talkinghead.inference.mouth`). The real driving frame is the ground truth here, so its own mouth would be the
answer; the driver is instead a frame of *another* validation identity, the one whose mouth opening is closest to
the target's (what a cross-reenactment gives: someone else's teeth and mouth, lit like the photo).

``--painted`` adds, for each model, its output with the opening painted over by hand-made rules (an experiment, not
in the product): a dark cavity (the source's lip colour x 0.32, shaded) inside the target's inner lips, faded in as
the target opens beyond the source (full at +0.06 inter-ocular distances), and the same with an upper-teeth band
(a warm light strip under the upper inner lip, from the source's cheek brightness).

    .venv/bin/python benchmarks/mouth_interior.py --data /tmp/ds/corpus256 [--split val] [--frames 64]
        [--model FILE ...] [--save DIR] [--painted]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from talkinghead.data.dataset import PreparedDataset
from talkinghead.evaluation.baselines import piecewise_affine
from talkinghead.evaluation.protocol import generate, load_identities
from talkinghead.faces.crop import CropBox
from talkinghead.faces.measures import interocular, mouth_opening
from talkinghead.inference.animate import CROP_SIZE, Animator
from talkinghead.inference.mouth import CHEEKS, FADE, INNER, OUTER, DriverMouth, SourceMouth, insert_mouth
from talkinghead.inference.source import SourceFace
from talkinghead.io import write_image
from talkinghead.models.bundle import load_model


def _polygon(points: np.ndarray) -> np.ndarray:
    mask = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def score(out: np.ndarray, real: np.ndarray, target: np.ndarray) -> dict[str, float]:
    inner = _polygon(target[INNER])
    lo = np.floor(target[OUTER].min(0) - 6).astype(int).clip(0, CROP_SIZE)
    hi = np.ceil(target[OUTER].max(0) + 6).astype(int).clip(0, CROP_SIZE)
    a, b = out[lo[1] : hi[1], lo[0] : hi[0]], real[lo[1] : hi[1], lo[0] : hi[0]]
    return {
        "l1": float(np.abs(out.astype(np.float32) - real.astype(np.float32))[inner].mean()),
        "luma": float(_luma(out)[inner].mean() - _luma(real)[inner].mean()),
        "ssim": float(structural_similarity(a, b, channel_axis=-1, data_range=255, win_size=7)),
    }


def source_mouth(crop: np.ndarray, lmk: np.ndarray) -> tuple[float, np.ndarray, float]:
    """A source's mouth opening, mean lip colour (RGB) and median cheek brightness (0-255)."""
    lips = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(lmk[OUTER]).astype(np.int32)], 1)
    cv2.fillPoly(lips, [np.round(lmk[INNER]).astype(np.int32)], 0)
    colour = crop[lips > 0].reshape(-1, 3).mean(0) if lips.any() else np.array([150.0, 80.0, 80.0])
    cheeks = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(cheeks, cv2.convexHull(np.round(lmk[CHEEKS]).astype(np.int32)), 1)
    skin = float(np.median(_luma(crop)[cheeks > 0])) if cheeks.any() else 150.0
    return float(mouth_opening(lmk)), colour.astype(np.float32), skin


def painted(img: np.ndarray, tgt: np.ndarray, source: tuple[float, np.ndarray, float], teeth: bool) -> np.ndarray:
    """``img`` with the opening beyond the source's painted as a dark cavity (and an upper-teeth band)."""
    src_open, lip, skin = source
    a = float(np.clip((float(mouth_opening(tgt)) - src_open - FADE[0]) / (FADE[1] - FADE[0]), 0.0, 1.0))
    if a <= 0:
        return img
    s, iod, sup = img.shape[0], float(interocular(tgt)), 4
    mask = np.zeros((s * sup, s * sup), np.uint8)
    cv2.fillPoly(mask, [np.round(tgt[INNER] * sup).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    m = cv2.resize(mask, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    m = cv2.GaussianBlur(m, (0, 0), max(0.5, 0.012 * iod))
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    upper, lower = tgt[[60, 61, 62, 63, 64]], tgt[[60, 67, 66, 65, 64]]
    y_up = np.interp(xs, upper[:, 0], upper[:, 1]) if np.all(np.diff(upper[:, 0]) > 0) else upper[:, 1].mean()
    y_lo = np.interp(xs, lower[:, 0], lower[:, 1]) if np.all(np.diff(lower[:, 0]) > 0) else lower[:, 1].mean()
    h = np.maximum(y_lo - y_up, 1e-3)
    v = np.clip((ys - y_up) / h, 0.0, 1.0)  # 0 at the upper inner lip, 1 at the lower
    fill = (lip * 0.32)[None, None] * (0.7 + 0.6 * np.abs(v - 0.45)[..., None])
    if teeth:
        cx, hw = tgt[[60, 64], 0].mean(), max(abs(tgt[64, 0] - tgt[60, 0]) / 2, 1.0)
        th = np.minimum(0.3 * h, 0.07 * iod)
        band = 0.85 * np.clip((th - (ys - y_up)) / np.maximum(0.5 * th, 0.5), 0, 1) * \
            np.clip((0.92 - np.abs(xs - cx) / hw) / 0.35, 0, 1)
        colour = np.array([1.0, 0.95, 0.86], np.float32) * np.clip(1.2 * skin, 140, 235)
        fill = fill * (1 - band[..., None]) + colour[None, None] * band[..., None]
    w = (a * m)[..., None]
    return np.clip(img * (1 - w) + fill * w, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--frames", type=int, default=64, help="driving frames per identity (before the open filter)")
    ap.add_argument("--min-gap", type=float, default=0.08)
    ap.add_argument("--model", nargs="*", default=[None], help="model files (default: the shipped one)")
    ap.add_argument("--save", type=Path, help="write mouth crops (real | warp | models) of a few frames here")
    ap.add_argument("--painted", action="store_true", help="add each model's output with the opening painted over")
    args = ap.parse_args()

    identities = load_identities(PreparedDataset(args.data, split=args.split), 1, args.frames)
    animators = {("shipped" if m is None else Path(m).stem): Animator(load_model(m)) for m in args.model}
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    per_id: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    box = CropBox(0.0, 0.0, float(CROP_SIZE))
    material = []
    for ident in identities:
        i = int(np.argmin(mouth_opening(ident.pool_landmarks)))
        src = [SourceFace(ident.source_pool[i], box, ident.source_pool[i], ident.pool_landmarks[i],
                          f"{ident.source_clip}#{ident.pool_ids[i]}")]
        targets, real = ident.self_targets(src[0])
        material.append((ident, src, targets, real))
    for ident, src, targets, real in material:
        keep = np.where(mouth_opening(targets) >= mouth_opening(src[0].landmarks) + args.min_gap)[0]
        if len(keep) == 0:
            print(f"{ident.name}: no driving frame opens the mouth by {args.min_gap} more than the source")
            continue
        targets, real = targets[keep], real[keep]
        # cross-reenactment's driver: another identity's frame with the opening closest to the target's
        others = [(r, t) for other, _, ts, rs in material if other.name != ident.name
                  for r, t in zip(rs, ts, strict=True)]
        other_open = mouth_opening(np.stack([t for _, t in others]))
        drivers = [others[int(np.argmin(np.abs(other_open - o)))] for o in mouth_opening(targets)]
        outs = {"warp": np.stack([piecewise_affine(src[0].crop, src[0].landmarks, t) for t in targets])}
        for name, anim in animators.items():
            anim.set_faces(src, 0, progress=False)
            outs[name] = generate(anim, targets)
            photo_mouth = SourceMouth.of([src[0].crop], [src[0].landmarks])
            outs[name + "+driver"] = np.stack(
                [insert_mouth(o, t, DriverMouth.of(*d), photo_mouth)
                 for o, t, d in zip(outs[name], targets, drivers, strict=True)])
            if args.painted:
                mouth = source_mouth(src[0].crop, src[0].landmarks)
                for teeth in (False, True):
                    outs[name + ("+teeth" if teeth else "+cavity")] = np.stack(
                        [painted(o, t, mouth, teeth) for o, t in zip(outs[name], targets, strict=True)])
        for name, imgs in outs.items():
            for img, r, t in zip(imgs, real, targets, strict=True):
                s = score(img, r, t)
                rows[name].append(s)
                per_id[(ident.name, name)].append(s)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for j in np.linspace(0, len(targets) - 1, min(3, len(targets))).astype(int):
                c = targets[j][OUTER].mean(0).round().astype(int)
                y0, x0 = np.clip(c[::-1] - 40, 0, CROP_SIZE - 80)
                tiles = [real[j]] + [outs[n][j] for n in outs]
                strip = np.concatenate([cv2.resize(t[y0 : y0 + 80, x0 : x0 + 80], (160, 160)) for t in tiles], 1)
                write_image(args.save / f"{ident.name}_{j}.png", strip)
        print(f"{ident.name}: {len(keep)} frames open by >= {args.min_gap} (source opening "
              f"{mouth_opening(src[0].landmarks):.3f})", flush=True)

    print("\nper identity: L1 / luma / SSIM")
    for (ident, name), v in sorted(per_id.items()):
        m = {k: np.mean([r[k] for r in v]) for k in v[0]}
        print(f"  {ident:28s} {name:12s} {m['l1']:6.1f} {m['luma']:+6.1f} {m['ssim']:.3f}  ({len(v)} frames)")
    print("\npooled over frames | inner-mouth L1 (0-255) | luma out - real | mouth-box SSIM")
    for name, v in rows.items():
        m = {k: np.mean([r[k] for r in v]) for k in v[0]}
        print(f"  {name:12s} {m['l1']:6.1f} {m['luma']:+6.1f} {m['ssim']:.3f}  ({len(v)} frames)")


if __name__ == "__main__":
    main()
