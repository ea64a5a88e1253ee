"""Non-learned baselines with the model's interface: source face(s) + target landmarks → images.

* ``static``: the source crop, unchanged (what a method that ignores the driver scores).
* ``warp``: a classic piecewise-affine warp of the source crop, moving the source landmarks onto the target
  landmarks; the crop's corners and edge midpoints are fixed points so the background stays put.

With several source frames, both use, per target, the source nearest the target in expression and pose (the
model's own first choice: the fairest for a method that cannot blend sources). Everything is in the source crop's pixels (256²).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
from scipy.spatial import Delaunay

from talkinghead.errors import InputError
from talkinghead.inference.source import SourceFace, nearest_sources

Baseline = Callable[[Sequence[SourceFace], np.ndarray], np.ndarray]
"""``(sources, targets (N, 68, 2) in crop pixels) → images (N, S, S, 3) uint8`` with S the crops' side."""


def nearest_source(sources: Sequence[SourceFace], target: np.ndarray) -> SourceFace:
    """The source nearest ``target`` ``(68, 2)`` in expression and pose: the one our model would use first
    (:func:`talkinghead.inference.source.nearest_sources`), so baselines and model start from the same frame."""
    if not sources:
        raise InputError("no source face given")
    pick = nearest_sources(target[None], np.stack([s.landmarks for s in sources]), 1)
    return sources[int(pick[0, 0])]


def static(sources: Sequence[SourceFace], targets: np.ndarray) -> np.ndarray:
    """The nearest source crop, unchanged, once per target: ``(N, S, S, 3) uint8``."""
    targets = np.asarray(targets, np.float32).reshape(-1, 68, 2)
    return np.stack([nearest_source(sources, t).crop for t in targets])


def _anchors(size: int) -> np.ndarray:
    e = float(size - 1)
    h = e / 2
    return np.array([[0, 0], [h, 0], [e, 0], [e, h], [e, e], [h, e], [0, e], [0, h]], np.float32)


def piecewise_affine(image: np.ndarray, src_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """Warp ``image`` ``(H, W, C)`` so that ``src_points`` ``(P, 2)`` (x, y pixels) land on ``dst_points``.

    The mesh is the Delaunay triangulation of ``src_points`` plus the image's corners and edge midpoints (fixed);
    each destination triangle is filled by the affine map back to its source triangle (backward mapping, bilinear).
    """
    h, w = image.shape[:2]
    if h != w:
        raise ValueError("piecewise_affine expects a square image")
    anchors = _anchors(h)
    src = np.concatenate([np.asarray(src_points, np.float32), anchors])
    dst = np.concatenate([np.asarray(dst_points, np.float32), anchors])
    tri = Delaunay(src.astype(np.float64)).simplices
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs.copy(), ys.copy()  # pixels no triangle covers keep their place
    label = np.full((h, w), -1, np.int32)
    mats = []
    for k, (i, j, m) in enumerate(tri):
        d = dst[[i, j, m]]
        u, v = d[1] - d[0], d[2] - d[0]
        area = 0.5 * abs(float(u[0] * v[1] - u[1] * v[0]))
        if area < 1e-3:  # a collapsed destination triangle covers no pixel
            mats.append(None)
            continue
        mats.append(cv2.getAffineTransform(d, src[[i, j, m]]))
        poly = np.round(d * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillConvexPoly(label, poly, k, lineType=cv2.LINE_8, shift=4)
    for k, mat in enumerate(mats):
        if mat is None:
            continue
        sel = label == k
        if not sel.any():
            continue
        x, y = xs[sel], ys[sel]
        map_x[sel] = mat[0, 0] * x + mat[0, 1] * y + mat[0, 2]
        map_y[sel] = mat[1, 0] * x + mat[1, 1] * y + mat[1, 2]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp(sources: Sequence[SourceFace], targets: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of the nearest source crop onto each target ``(68, 2)``: ``(N, S, S, 3) uint8``."""
    targets = np.asarray(targets, np.float32).reshape(-1, 68, 2)
    out = []
    for t in targets:
        s = nearest_source(sources, t)
        out.append(piecewise_affine(s.crop, s.landmarks, t))
    return np.stack(out)


BASELINES: dict[str, Baseline] = {"static": static, "warp": warp}
"""The baselines by name (as in ``talkinghead evaluate --baselines``)."""


def get_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
    return BASELINES[name]
