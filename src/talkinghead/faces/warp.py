"""Dense motion from landmarks: a thin-plate-spline backward flow over the whole frame.

For every pixel of the *target* frame, where to sample the *source* frame so that the source's 68 landmarks land
on the target's. Fixed anchors along the frame border keep the background in place while the head, hair and neck
move with the face. The flow is smooth, so it is computed on a coarse grid and upsampled by whoever uses it.

Grids follow :func:`torch.nn.functional.grid_sample` with ``align_corners=False``: ``(..., H, W, 2)`` of (x, y) in
[-1, 1], where -1 and 1 are the outer edges of the frame's border pixels.
"""

from __future__ import annotations

import numpy as np

BORDER_ANCHORS = 5
"""Anchors per side of the frame (corners included): 16 fixed points around the border."""


def border_anchors(size: float, per_side: int = BORDER_ANCHORS) -> np.ndarray:
    """Points ``(4 * (per_side - 1), 2)`` evenly spaced along the border of a ``size``² frame, in pixels."""
    e = float(size) - 1.0
    t = np.linspace(0.0, e, per_side)[:-1]
    top = np.stack([t, np.zeros_like(t)], 1)
    right = np.stack([np.full_like(t, e), t], 1)
    bottom = np.stack([e - t, np.full_like(t, e)], 1)
    left = np.stack([np.zeros_like(t), e - t], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float64)


def _kernel(r2: np.ndarray) -> np.ndarray:
    """TPS radial basis U(r) = r² log r² (0 at r = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-20)), 0.0)


def tps_fit(ctrl: np.ndarray, values: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Thin-plate-spline coefficients ``(P + 3, 2)`` interpolating ``values`` at the control points ``ctrl``."""
    n = len(ctrl)
    d2 = ((ctrl[:, None] - ctrl[None]) ** 2).sum(-1)
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = _kernel(d2) + smoothing * np.eye(n)
    a[:n, n] = 1.0
    a[:n, n + 1 :] = ctrl
    a[n, :n] = 1.0
    a[n + 1 :, :n] = ctrl.T
    b = np.zeros((n + 3, 2))
    b[:n] = values
    return _solve(a, b)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:  # coincident control points
        return np.linalg.lstsq(a, b, rcond=None)[0]


def tps_eval(coef: np.ndarray, ctrl: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The spline at ``points`` ``(M, 2)`` → ``(M, 2)`` (float32 inside: this runs per frame)."""
    n = len(ctrl)
    p = points.astype(np.float32)
    c = ctrl.astype(np.float32)
    d2 = (p * p).sum(1)[:, None] + (c * c).sum(1)[None] - 2.0 * (p @ c.T)
    np.maximum(d2, 1e-12, out=d2)
    u = d2 * np.log(d2)
    return u @ coef[:n].astype(np.float32) + coef[n].astype(np.float32) + p @ coef[n + 1 :].astype(np.float32)


def tps_grid(target: np.ndarray, source: np.ndarray, frame_size: int, grid_size: int = 64,
             smoothing: float = 1e-3) -> np.ndarray:
    """Backward flow ``(grid_size, grid_size, 2) float32`` in [-1, 1]: for each target pixel, where in the source.

    ``target``, ``source``: ``(68, 2)`` landmarks in the pixels of a ``frame_size``² frame (the same frame for both:
    e.g. the 256² crop). Non-finite landmarks give the identity grid (no motion). ``smoothing`` regularises the
    spline in normalised units, so noisy landmarks do not fold it.
    """
    tgt = np.asarray(target, np.float64)
    src = np.asarray(source, np.float64)
    ident = identity_grid(grid_size)
    if not (np.isfinite(tgt).all() and np.isfinite(src).all()):
        return ident
    anchors = border_anchors(frame_size)
    scale = 2.0 / frame_size  # pixels → [-1, 1] with pixel centres at (x + 0.5) * scale - 1

    def norm(p: np.ndarray) -> np.ndarray:
        return (p + 0.5) * scale - 1.0

    ctrl = norm(np.concatenate([tgt, anchors]))
    vals = norm(np.concatenate([src, anchors]))
    coef = tps_fit(ctrl, vals - ctrl, smoothing)  # fit the displacement: zero where nothing moves
    pts = ident.reshape(-1, 2).astype(np.float64)
    out = pts + tps_eval(coef, ctrl, pts)
    return out.reshape(grid_size, grid_size, 2).astype(np.float32)


def identity_grid(size: int) -> np.ndarray:
    """``(size, size, 2) float32``: every pixel samples itself (pixel centres, ``align_corners=False``)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs, ys], -1)


def prior_grids(targets: np.ndarray, sources: np.ndarray, frame_size: int, grid_size: int = 64) -> np.ndarray:
    """Every (target, source) pair: ``targets (N, 68, 2)``, ``sources (K, 68, 2)`` → ``(N, K, 2, g, g) float32``
    (channels first, ready for the warp generator)."""
    out = np.empty((len(targets), len(sources), 2, grid_size, grid_size), np.float32)
    for i, t in enumerate(targets):
        for k, s in enumerate(sources):
            out[i, k] = tps_grid(t, s, frame_size, grid_size).transpose(2, 0, 1)
    return out


def warp_image(image: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sample ``image`` ``(H, W, C)`` with a grid ``(g, g, 2)`` in [-1, 1], upsampled to ``H x W`` (bilinear)."""
    import cv2

    h, w = image.shape[:2]
    g = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR) if grid.shape[:2] != (h, w) else grid
    map_x = ((g[..., 0] + 1.0) * w / 2.0 - 0.5).astype(np.float32)
    map_y = ((g[..., 1] + 1.0) * h / 2.0 - 0.5).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
