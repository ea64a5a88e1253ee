"""Dense motion from landmarks: a thin-plate-spline backward flow over the whole frame.

For every pixel of the *target* frame, where to sample the *source* frame so that the source's 68 landmarks land
on the target's. Fixed anchors along the frame border keep the background in place while the head, hair and neck
move with the face. The flow is smooth, so it is computed on a coarse grid and upsampled by whoever uses it.

Grids follow :func:`torch.nn.functional.grid_sample` with ``align_corners=False``: ``(..., H, W, 2)`` of (x, y) in
[-1, 1], where -1 and 1 are the outer edges of the frame's border pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from talkinghead.faces.measures import apply, eye_centres, similarity

BORDER_ANCHORS = 5
"""Anchors per side of the frame (corners included): 16 fixed points around the border."""

HEAD_POSE_POINTS = np.array([0, 16, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])
"""Landmarks that move with the head as a whole (the jaw's ends by the ears, the nose, the eye corners): the head
points' motion is the similarity fitted on them."""
HEAD_ARC = (60.0, 120.0, 3)
"""The head points: from, to (degrees from the eye line, over the top of the head) and how many."""
HEAD_MARGIN = 0.06
"""Head points nearer the frame's border than this share of its side are left out."""
HEAD_GIVE = 0.3
"""Towards the border a head point moves at most this share of its distance to it (its motion shortened as a
whole): the strip between is squeezed at most to 70 %, and the spline holds the border (within 1.5 px of a 256²
frame where the head rises 20 px with its crown near the top; at a give of 0.5 the border's middle bulged 7 px)."""


def head_points(target: np.ndarray, source: np.ndarray, frame_size: float, radius: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Control points above the forehead that move with the head as a whole: ``(P, 2)`` in the target and in the
    source (pixels; P ≤ 3, none near the border).

    The 68 landmarks stop at the brows, so without them the spline pins the hair and the top of the head halfway
    between the brows and the fixed border: a head that moves down grows a tall forehead and a stretched crown.
    These points sit ``radius`` inter-ocular distances from the source's eye centres, over the top of the head
    (:data:`HEAD_ARC`), and follow the similarity of :data:`HEAD_POSE_POINTS` from source to target, so the hair
    moves with the face and the stretch goes to what lies between it and the border.
    """
    left, right = eye_centres(source)
    along = right - left
    iod = float(np.linalg.norm(along))
    if not np.isfinite(iod) or iod < 1e-6:
        return np.empty((0, 2)), np.empty((0, 2))
    along = along / iod
    up = np.array([along[1], -along[0]])  # image y points down
    lo, hi, n = HEAD_ARC
    ang = np.deg2rad(np.linspace(lo, hi, n))
    src = (left + right) / 2 + radius * iod * (np.cos(ang)[:, None] * along + np.sin(ang)[:, None] * up)
    edge = float(frame_size) - 1.0
    margin = HEAD_MARGIN * frame_size
    src = src[((src >= margin) & (src <= edge - margin)).all(1)]
    mat = similarity(source[HEAD_POSE_POINTS], target[HEAD_POSE_POINTS])
    move = apply(mat, src) - src
    # towards the border a point moves at most HEAD_GIVE of its distance to it (per axis, the border it moves to)
    toward = np.where(move < 0, src, edge - src)
    room = np.where(move != 0, HEAD_GIVE * toward / np.maximum(np.abs(move), 1e-9), np.inf)
    keep = np.clip(room.min(1, initial=1.0), 0.0, 1.0)
    return src + move * keep[:, None], src


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
             smoothing: float = 1e-3, head: float = 0.0) -> np.ndarray:
    """Backward flow ``(grid_size, grid_size, 2) float32`` in [-1, 1]: for each target pixel, where in the source.

    ``target``, ``source``: ``(68, 2)`` landmarks in the pixels of a ``frame_size``² frame (the same frame for both:
    e.g. the 256² crop). Non-finite landmarks give the identity grid (no motion). ``smoothing`` regularises the
    spline in normalised units, so noisy landmarks do not fold it. ``head`` > 0 adds :func:`head_points` at that
    many inter-ocular distances (0: the landmarks and the border alone).

    This runs per frame (live, animate, training episodes), so the spline is evaluated with what depends only on the
    grid and the border anchors precomputed (:func:`_grid_basis`): half the time of ``pts + tps_eval(coef, ctrl,
    pts)``, the same spline in float32 too (the two differ by rounding, < 1e-4: 0.013 px at 256²).
    """
    tgt = np.asarray(target, np.float64)
    src = np.asarray(source, np.float64)
    if not (np.isfinite(tgt).all() and np.isfinite(src).all()):
        return identity_grid(grid_size)
    if head > 0:
        more_t, more_s = head_points(tgt, src, frame_size, head)
        tgt, src = np.concatenate([tgt, more_t]), np.concatenate([src, more_s])
    basis = _grid_basis(frame_size, grid_size)
    scale = 2.0 / frame_size  # pixels → [-1, 1] with pixel centres at (x + 0.5) * scale - 1
    moving = (tgt + 0.5) * scale - 1.0
    ctrl = np.concatenate([moving, basis.anchors])
    vals = np.concatenate([(src + 0.5) * scale - 1.0, basis.anchors])
    coef = tps_fit(ctrl, vals - ctrl, smoothing)  # fit the displacement: zero where nothing moves
    out = basis.eval(coef, moving)
    out += basis.points
    return out.reshape(grid_size, grid_size, 2)


@dataclass(frozen=True)
class _GridBasis:
    """The parts of the spline's evaluation on one fixed grid that do not depend on the landmarks.

    A spline with control points ``[moving landmarks; fixed anchors]`` evaluated at the grid points is
    ``U(d²(pts, landmarks)) @ w_landmarks + [U(d²(pts, anchors)), 1, pts] @ [w_anchors; affine]``; the second
    matrix is ``fixed``. Squared distances come from one small matrix product: ``lifted @ [-2 c; 1; |c|²]``.
    """

    points: np.ndarray
    """``(M, 2) float32``: the grid's points (pixel centres in [-1, 1], rows first)."""
    lifted: np.ndarray
    """``(M, 4) float32``: ``[x, y, x² + y², 1]`` per point."""
    fixed: np.ndarray
    """``(M, A + 3) float32``: the kernel to each border anchor, then ``1, x, y``."""
    anchors: np.ndarray
    """``(A, 2) float64``: the border anchors in [-1, 1]."""

    def eval(self, coef: np.ndarray, moving: np.ndarray) -> np.ndarray:
        """The spline's value ``(M, 2) float32`` at every grid point; ``coef`` ``(P + A + 3, 2)`` from
        :func:`tps_fit` over ``[moving; anchors]``, ``moving`` ``(P, 2)`` the control points that change per call."""
        n = len(moving)
        c = moving.astype(np.float32)
        rhs = np.empty((4, n), np.float32)
        rhs[:2] = -2.0 * c.T
        rhs[2] = 1.0
        rhs[3] = (c * c).sum(1)
        u = self.lifted @ rhs  # squared distances (M, P)
        np.maximum(u, 1e-12, out=u)
        log = np.log(u)
        u *= log
        w = coef.astype(np.float32)
        return u @ w[:n] + self.fixed @ w[n:]


@lru_cache(maxsize=16)
def _grid_basis(frame_size: float, grid_size: int) -> _GridBasis:
    """The (cached) :class:`_GridBasis` of a ``grid_size``² grid over a ``frame_size``² frame."""
    pts = identity_grid(grid_size).reshape(-1, 2)
    anchors = (border_anchors(frame_size) + 0.5) * (2.0 / frame_size) - 1.0
    a = anchors.astype(np.float32)
    d2 = (pts * pts).sum(1)[:, None] + (a * a).sum(1)[None] - 2.0 * (pts @ a.T)
    np.maximum(d2, 1e-12, out=d2)
    ones = np.ones((len(pts), 1), np.float32)
    fixed = np.concatenate([d2 * np.log(d2), ones, pts], 1).astype(np.float32)
    lifted = np.concatenate([pts, (pts * pts).sum(1, keepdims=True), ones], 1).astype(np.float32)
    for arr in (pts, lifted, fixed, anchors):
        arr.flags.writeable = False
    return _GridBasis(pts, lifted, fixed, anchors)


def identity_grid(size: int) -> np.ndarray:
    """``(size, size, 2) float32``: every pixel samples itself (pixel centres, ``align_corners=False``)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs, ys], -1)


def prior_grids(targets: np.ndarray, sources: np.ndarray, frame_size: int, grid_size: int = 64,
                head: float = 0.0) -> np.ndarray:
    """Every (target, source) pair: ``targets (N, 68, 2)``, ``sources (K, 68, 2)`` → ``(N, K, 2, g, g) float32``
    (channels first, ready for the warp generator; ``head``: see :func:`tps_grid`)."""
    out = np.empty((len(targets), len(sources), 2, grid_size, grid_size), np.float32)
    for i, t in enumerate(targets):
        for k, s in enumerate(sources):
            out[i, k] = tps_grid(t, s, frame_size, grid_size, head=head).transpose(2, 0, 1)
    return out


def warp_image(image: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sample ``image`` ``(H, W, C)`` with a grid ``(g, g, 2)`` in [-1, 1], upsampled to ``H x W`` (bilinear)."""
    import cv2

    h, w = image.shape[:2]
    g = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR) if grid.shape[:2] != (h, w) else grid
    map_x = ((g[..., 0] + 1.0) * w / 2.0 - 0.5).astype(np.float32)
    map_y = ((g[..., 1] + 1.0) * h / 2.0 - 0.5).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
