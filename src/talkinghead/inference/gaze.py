"""The driver's gaze, moved into the output's eyes.

The 68 landmarks outline the lids but say nothing of where the eyes look, so a landmark-driven warp keeps the
photo's gaze fixed while the driver looks about. Each eye's iris is found as the centroid of the darkest pixels
between its lids (:func:`iris_positions`: in the eye's own frame, ``u`` from the outer-left corner to the other
corner, ``v`` across, both in eye widths). The driver's gaze is taken relative to where it usually looks
(:class:`GazeFollower`: the median of its first :data:`NEUTRAL_FRAMES` readings; a driver whose readings jitter
or are rare is not followed), and the output's irises are slid by that much along and across their eyes
(:func:`move_irises`): a one-dimensional stretch of the eye between its corners, so the corners stay, nothing is
pulled in from outside the lids, and the white on one side is squeezed as it is stretched on the other. Where the
driver's eyes are closed, or the two eyes' readings disagree, the last gaze is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from talkinghead.inference.compose import polygon_mask

EYES = (np.arange(36, 42), np.arange(42, 48))
"""iBUG 68 eye contours: corners at positions 0 and 3, upper lid 1-2, lower lid 4-5."""
MIN_OPEN = 0.16
"""An eye whose lids are closer than this (eye widths) is taken as closed: no gaze read, no iris moved."""
MIN_WIDTH = 8.0
"""Eyes narrower than this (pixels) are too small to read a gaze from."""
NEUTRAL_FRAMES = 50
"""The driver's usual gaze: the median over its first this many frames with open eyes (2 s at 25 fps)."""
AGREE = (0.12, 0.08)
"""The most the two eyes' readings ``(u, v)`` may differ for a gaze to be read from them."""
MAX_JITTER = 0.035
"""A driver whose horizontal gaze readings jump by more than this from frame to frame (the median over its first
:data:`NEUTRAL_FRAMES`) is not followed: its eyes are too small, or behind reflecting glasses, to be read."""
MIN_READ = 0.3
"""Nor is one whose gaze is read in fewer than this share of its first frames with a face (from the 25th on)."""
DEADBAND = 0.03
"""Gaze changes smaller than this (eye widths) are the detector's noise, and left out."""
MAX_SHIFT = (0.25, 0.08)
"""The most an iris is moved along and across its eye (eye widths)."""
VERTICAL = 0.5
"""How much of the driver's vertical gaze passes: the lids, which the landmarks carry, already follow most of it."""
EDGE = 0.15
"""An iris is not moved closer than this (eye widths) to a corner."""
LID_MARGIN = 0.7
"""The part of the lids' distance (around the eye's middle line) that is read and moved: the lid landmarks sit on
the lash lines, which stay where they are."""


def eye_frame(lmk: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(first corner, unit vector along the eye, unit vector across it, width in pixels)."""
    c0, c1 = lmk[idx[0]].astype(np.float64), lmk[idx[3]].astype(np.float64)
    axis = c1 - c0
    w = float(np.hypot(*axis))
    ex = axis / max(w, 1e-6)
    return c0, ex, np.array([-ex[1], ex[0]]), w


def _lid_gap(lmk: np.ndarray, idx: np.ndarray) -> float:
    """Mean lid distance over the eye's width."""
    p = lmk[idx].astype(np.float64)
    w = float(np.hypot(*(p[3] - p[0])))
    return float((np.hypot(*(p[1] - p[5])) + np.hypot(*(p[2] - p[4]))) / 2 / max(w, 1e-6))


def iris_position(gray: np.ndarray, lmk: np.ndarray, idx: np.ndarray, n: int = 32) -> np.ndarray:
    """``(u, v)`` of one eye's iris (eye widths, in the eye's own frame); NaN where the eye is closed or too small.

    The eye is resampled onto an ``n × n/2`` grid in its own frame and the pixels between the lids darker than
    their 35th percentile are weighted by how much darker."""
    c0, ex, ey, w = eye_frame(lmk, idx)
    if w < MIN_WIDTH or _lid_gap(lmk, idx) < MIN_OPEN:
        return np.full(2, np.nan)
    us = np.linspace(0.0, 1.0, n)
    vs = np.linspace(-0.35, 0.35, n // 2)
    uu, vv = np.meshgrid(us, vs)
    pts = c0 + (uu[..., None] * ex + vv[..., None] * ey) * w
    patch = cv2.remap(gray, pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    rel = lmk[idx].astype(np.float64) - c0
    pv = rel @ ey / w
    pv = pv.mean() + (pv - pv.mean()) * LID_MARGIN  # the lash lines, on which the lid landmarks sit, left out
    poly = np.stack([(rel @ ex) / w * (n - 1), (pv + 0.35) / 0.7 * (n // 2 - 1)], 1)
    inside = np.zeros(patch.shape, np.uint8)
    cv2.fillConvexPoly(inside, np.round(poly).astype(np.int32), 1)
    values = patch[inside > 0]
    if values.size < 12 or float(values.std()) < 4.0:
        return np.full(2, np.nan)
    weight = np.clip(np.percentile(values, 35) - patch, 0.0, None) * inside
    total = float(weight.sum())
    if total <= 0:
        return np.full(2, np.nan)
    return np.array([(weight * uu).sum() / total, (weight * vv).sum() / total])


def _eyes_gray(image: np.ndarray, lmk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gray pixels around both eyes, and the landmarks in that patch's pixels (only that much is converted)."""
    eyes = lmk[36:48].astype(np.float64)
    pad = 0.5 * float(np.ptp(eyes[:, 0])) / 2 + 2
    h, w = image.shape[:2]
    x0, y0 = np.clip(np.floor(eyes.min(0) - pad), 0, [w - 1, h - 1]).astype(int)
    x1, y1 = np.clip(np.ceil(eyes.max(0) + pad), [x0 + 1, y0 + 1], [w, h]).astype(int)
    patch = image[y0:y1, x0:x1]
    gray = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
    return gray, lmk - np.array([x0, y0], lmk.dtype)


def iris_positions(image: np.ndarray, lmk: np.ndarray) -> np.ndarray:
    """Both eyes' :func:`iris_position` ``(2, 2)`` from an RGB (or gray) image and its landmarks."""
    if not np.isfinite(lmk[36:48]).all():
        return np.full((2, 2), np.nan)
    gray, local = _eyes_gray(image, lmk)
    return np.stack([iris_position(gray, local, idx) for idx in EYES])


def conjugate(positions: np.ndarray) -> np.ndarray:
    """The two eyes' mean ``(u, v)``; NaN unless both were read and agree (within :data:`AGREE`): eyes move
    together, so two readings far apart mean at least one is wrong (a reflection on glasses, a lash line)."""
    if not np.isfinite(positions).all() or np.any(np.abs(positions[0] - positions[1]) > AGREE):
        return np.full(2, np.nan)
    return positions.mean(0)


class GazeFollower:
    """The driver's gaze relative to where it usually looks, frame by frame (see the module's docstring)."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []
        self.steps: list[float] = []
        """Frame-to-frame changes of the horizontal reading among the first observations (its jitter)."""
        self._previous: np.ndarray | None = None
        self.tried = 0
        """Frames with a face observed until the neutral was complete."""
        self.last = np.zeros(2)

    @property
    def neutral(self) -> np.ndarray | None:
        return np.median(np.stack(self.seen), 0) if self.seen else None

    @property
    def reliable(self) -> bool:
        """Whether the readings are steady enough to follow (:data:`MAX_JITTER`; undecided counts as steady)."""
        if self.tried >= 25 and len(self.seen) < MIN_READ * self.tried:
            return False
        return len(self.steps) < 5 or float(np.median(self.steps)) <= MAX_JITTER

    def observe(self, frame: np.ndarray, lmk: np.ndarray) -> np.ndarray:
        """A driving frame's gaze ``(u, v)`` (NaN: closed eyes or unreadable), counted towards the neutral."""
        g = conjugate(iris_positions(frame, lmk))
        if len(self.seen) < NEUTRAL_FRAMES:
            self.tried += 1
            if np.isfinite(g).all():
                self.seen.append(g)
                if self._previous is not None:
                    self.steps.append(float(abs(g[0] - self._previous[0])))
            self._previous = g if np.isfinite(g).all() else None
        return g

    def offset(self, gaze: np.ndarray | None) -> np.ndarray:
        """How far ``gaze`` (from :meth:`observe`) looks from the neutral ``(du, dv)``, eye widths; a frame with
        the eyes closed or unread (NaN) or none (None) keeps the last offset; an unsteady driver gives none."""
        neutral = self.neutral
        if not self.reliable:
            self.last = np.zeros(2)
            return self.last
        if gaze is None or neutral is None or not np.isfinite(gaze).all():
            return self.last
        self.last = iris_shift(gaze - neutral)
        return self.last


def iris_shift(gaze: np.ndarray) -> np.ndarray:
    """A gaze relative to where the eyes usually look ``(..., 2)`` → how far to slide the output's irises: the
    detector's noise (:data:`DEADBAND`) left out, the vertical part at :data:`VERTICAL`, at most :data:`MAX_SHIFT`."""
    d = np.asarray(gaze, np.float64)
    d = np.sign(d) * np.maximum(np.abs(d) - DEADBAND, 0.0)
    d = d * np.array([1.0, VERTICAL])
    return np.clip(d, -np.array(MAX_SHIFT), np.array(MAX_SHIFT))


def gaze_track(frames: Iterable[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
    """A recorded clip's gaze relative to where it usually looks (the median of all its readings), per frame
    ``(N, 2)`` eye widths: a frame whose gaze is not read (closed eyes, a disagreement) holds the last reading (the
    first frames take the first one). All zeros for a clip that :class:`GazeFollower` would not follow (unsteady or
    rare readings) or in which no gaze is read. ``frames``: RGB images whose pixels ``landmarks`` ``(N, 68, 2)``
    are in."""
    follower = GazeFollower()
    readings = np.stack([follower.observe(frame, lmk) for frame, lmk in zip(frames, landmarks, strict=True)])
    read = np.isfinite(readings).all(1)
    if not read.any() or not follower.reliable:
        return np.zeros((len(readings), 2), np.float32)
    idx = np.where(read, np.arange(len(read)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.argmax(read))  # before the first reading: the first reading
    held = readings[idx]
    return (held - np.median(readings[read], 0)).astype(np.float32)


SOFTEN = 0.02
"""The eye mask's edge is blurred by this much of the eye's width (at least 0.7 px): 0.7 px on the 256² crop's
eyes, more on a large photo's (full resolution), so the moved part fades into the lids at any size."""


def _eye_mask(points: np.ndarray, ey: np.ndarray, shape: tuple[int, int], width: float) -> np.ndarray:
    """The eye's opening between its lash lines (its polygon narrowed across the eye to :data:`LID_MARGIN`),
    anti-aliased and softened (:data:`SOFTEN`), ``float32`` in [0, 1]."""
    across = (points - points.mean(0)) @ ey
    return polygon_mask(points - np.outer(across * (1 - LID_MARGIN), ey), shape, max(0.7, SOFTEN * width))


def move_irises(face: np.ndarray, lmk: np.ndarray, offset: Sequence[float] | np.ndarray) -> np.ndarray:
    """``face`` ``(H, W, 3) uint8`` with each open eye's iris slid by ``offset`` ``(du, dv)`` (eye widths) along
    and across the eye (``lmk``: ``(68, 2)`` in the face's pixels). Pixels outside the eyes are left as they are."""
    du, dv = float(offset[0]), float(offset[1])
    if abs(du) < 1e-3 and abs(dv) < 1e-3:
        return face
    out = face
    gray, local = _eyes_gray(face, lmk)
    h, w_img = face.shape[:2]
    for idx in EYES:
        c0, ex, ey, w = eye_frame(lmk, idx)
        if w < MIN_WIDTH or _lid_gap(lmk, idx) < MIN_OPEN:
            continue
        found = iris_position(gray, local, idx)
        uc = float(found[0]) if np.isfinite(found).all() else 0.5
        uc = float(np.clip(uc, EDGE, 1 - EDGE))
        ut = float(np.clip(uc + du, EDGE, 1 - EDGE))  # where the iris goes
        pts = lmk[idx].astype(np.float64)
        lo = np.floor(pts.min(0) - 0.25 * w).astype(int).clip(0, [w_img - 1, h - 1])
        hi = np.ceil(pts.max(0) + 0.25 * w).astype(int).clip(lo + 1, [w_img, h])
        yy, xx = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float64)
        rel_x, rel_y = xx - c0[0], yy - c0[1]
        u = (rel_x * ex[0] + rel_y * ex[1]) / w
        # a stretch along the eye that takes the iris from uc to ut and keeps both corners: output u samples u - shift
        bump = np.where(u < ut, u / ut, (1 - u) / (1 - ut)).clip(0.0, 1.0)
        mask = _eye_mask(pts - lo, ey, (int(hi[1] - lo[1]), int(hi[0] - lo[0])), w)
        shift = bump * mask
        along, across = (ut - uc) * w * shift, dv * w * shift
        map_x = (xx - along * ex[0] - across * ey[0]).astype(np.float32)
        map_y = (yy - along * ex[1] - across * ey[1]).astype(np.float32)
        if out is face:
            out = face.copy()
        patch = cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[lo[1]:hi[1], lo[0]:hi[0]] = patch
    return out
