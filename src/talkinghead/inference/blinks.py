"""The driver's blinks, closed in the output.

dlib's 68 landmarks never bring the lids together: on closed eyes the lid points stay 0.4-0.7 of the open
distance apart (looked at on the corpus: the deepest dip of the lid distance under its running median in each of 80
clips; of the 60 under 0.75, all were closed or closing eyes but two behind reflecting glasses and a laughing
squint), so a warp to the target landmarks leaves the photo's eyes half open in the driver's blinks. And a warp
*squeezes* the eye between the lids, so the iris stays visible as a dark slit, where a real lid slides *over* it.

:class:`BlinkFollower` reads how far the driving face's eyes are open relative to their usual opening (the median
over the last :data:`WINDOW` frames, so a narrow-eyed driver is its own normal), and :func:`lid_cover` turns a
reading under :data:`START` into the share of the output's remaining eye opening that its upper lids cover (all of
it at :data:`CLOSED` and below), for as long as a blink lasts (:data:`MAX_BLINK`). :func:`close_lids` then slides
each upper lid, its lashes and the skin above it down over the eye in the output face's pixels: the eye below the
lid is left as it is (covered, not squeezed), and the skin between the lid and the brow stretches.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from talkinghead.faces.measures import eye_opening
from talkinghead.inference.gaze import EYES, eye_frame

BROWS = (np.arange(17, 22), np.arange(22, 27))
"""The brow over each eye of :data:`EYES`."""
WINDOW = 50
"""The driver's usual eye opening: the median over the last this many frames with a face (2 s at 25 fps; a blink
lasts 2-10 frames)."""
CLOSED = 0.65
"""A driver's eye opening (relative to its usual) at or below which its eyes are taken as closed."""
START = 0.88
"""Readings above this are left to the landmarks alone (frame to frame the reading moves by 0.02-0.04, median over
a clip, on the corpus' tracks)."""
MAX_BLINK = 8
"""The most frames in a row whose lids are slid more than half way (a blink lasts 2-10 frames at 25 fps: on the
corpus' tracks, dips of the eye opening under 0.75 of its running median last 4 frames (median), 10 (90th
percentile))."""
FADE = 4
"""Frames over which the cover fades out after :data:`MAX_BLINK`."""
MIN_WIDTH = 8.0
"""Eyes narrower than this (pixels) are left alone."""
LASH = 0.04
"""How far below the upper lid's landmarks (eye widths) its lashes reach: they slide with the lid."""
BELOW = 0.03
"""A fully closed lid comes down this far past the lower lid's landmarks (eye widths; in the eye's middle, tapering
to nothing at the corners), which sit on the lower lash line, just inside the eye's white."""
BAND = (0.12, 0.5)
"""The skin above the lid that stretches: 0.6 of the lid-to-brow distance, within these bounds (eye widths)."""


class BlinkFollower:
    """A driving face's eye opening relative to its usual one, and the output's lid cover, frame by frame (causal:
    live uses it too)."""

    def __init__(self, window: int = WINDOW) -> None:
        self.seen: deque[float] = deque(maxlen=window)
        self.low = 0
        """Consecutive frames read as a blink so far (:meth:`observe`)."""

    def relative(self, lmk: np.ndarray) -> float:
        """This frame's eye opening over the median of the last :data:`WINDOW` (this one included); 1.0 when it
        cannot be read."""
        e = float(eye_opening(np.asarray(lmk, np.float64)))
        if not np.isfinite(e) or e <= 0:
            return 1.0
        self.seen.append(e)
        return e / float(np.median(self.seen))

    def observe(self, lmk: np.ndarray) -> float:
        """The share of the output's eye opening its lids cover for this driving frame (:func:`lid_cover` of
        :meth:`relative`), for at most :data:`MAX_BLINK` frames in a row, then fading out over :data:`FADE`: lids
        that stay low longer are a look down (a GRID speaker reading his prompt) or a squint, which the landmarks
        already narrow, not a blink."""
        cover = lid_cover(self.relative(lmk))
        self.low = self.low + 1 if cover > 0.5 else 0
        return cover * float(np.clip(1.0 - (self.low - MAX_BLINK) / FADE, 0.0, 1.0))


def lid_cover(relative: float | None) -> float:
    """The share of the output's eye opening its upper lids should cover for a driver reading ``relative`` (from
    :meth:`BlinkFollower.relative`; None: none). The landmarks already narrowed the target's eyes to about
    ``relative`` of their usual opening; the lids come the rest of the way down so that the visible opening falls
    linearly from ``START`` at :data:`START` to nothing at :data:`CLOSED`."""
    if relative is None or not np.isfinite(relative) or relative >= START:
        return 0.0
    if relative <= CLOSED:
        return 1.0
    visible = START * (relative - CLOSED) / (START - CLOSED)
    return float(np.clip(1.0 - visible / relative, 0.0, 1.0))


def _lid_profile(u_points: np.ndarray, v_points: np.ndarray, u: np.ndarray, sign: float) -> np.ndarray:
    """One lid's line across the eye (``v`` at each ``u``, eye widths) from its four landmarks (corner, two lid
    points, corner): the polygon through them, or where it lies further in ``sign``'s direction (+1 down: the
    lower lid, -1 up: the upper), the elliptic arc between the corners through the lid points, which follows a
    lid's curve near the corners where the polygon cuts it short."""
    order = np.argsort(u_points)
    line = np.interp(u, u_points[order], v_points[order])
    chord = lambda x: np.interp(x, u_points[order][[0, -1]], v_points[order][[0, -1]])  # noqa: E731
    arc = lambda x: np.sqrt(np.clip(1.0 - (2.0 * x - 1.0) ** 2, 0.0, None))  # noqa: E731
    mid = order[1:-1]
    height = float(np.mean((v_points[mid] - chord(u_points[mid])) / np.maximum(arc(u_points[mid]), 0.3)))
    ellipse = chord(u) + height * arc(u)
    return np.maximum(line * sign, ellipse * sign) * sign


def close_lids(face: np.ndarray, lmk: np.ndarray, cover: float) -> np.ndarray:
    """``face`` ``(H, W, 3) uint8`` with each eye's upper lid slid down over ``cover`` (0-1) of the eye's opening
    (``lmk``: ``(68, 2)`` in the face's pixels). Pixels away from the eyes are left as they are."""
    if cover < 0.02 or not np.isfinite(lmk[17:48]).all():
        return face
    cover = min(float(cover), 1.0)
    out = face
    h, w_img = face.shape[:2]
    for idx, brow in zip(EYES, BROWS, strict=True):
        pts = lmk[idx].astype(np.float64)
        c0, ex, ey, w = eye_frame(lmk, idx)  # ey: across the eye, pointing down the face
        if w < MIN_WIDTH:
            continue
        pu, pv = (pts - c0) @ ex / w, (pts - c0) @ ey / w
        upper, lower = [0, 1, 2, 3], [3, 4, 5, 0]
        v_brow = float(((lmk[brow] - c0) @ ey / w).mean())
        band = float(np.clip(0.6 * (pv[upper].min() - v_brow), *BAND))
        corners = np.array([c0 + ex * a * w + ey * b * w for a in (-0.1, 1.1) for b in (pv.min() - band - 0.1,
                                                                                          pv.max() + 0.1)])
        lo = np.floor(corners.min(0)).astype(int).clip(0, [w_img - 1, h - 1])
        hi = np.ceil(corners.max(0)).astype(int).clip(lo + 1, [w_img, h])
        yy, xx = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float64)
        u = ((xx - c0[0]) * ex[0] + (yy - c0[1]) * ex[1]) / w
        v = ((xx - c0[0]) * ey[0] + (yy - c0[1]) * ey[1]) / w
        v_up = _lid_profile(pu[upper], pv[upper], u, -1.0)
        v_lo = _lid_profile(pu[lower], pv[lower], u, 1.0)
        inside = (u > 0) & (u < 1)
        taper = np.sqrt(np.clip(1.0 - (2.0 * u - 1.0) ** 2, 0.0, None))  # 0 at the corners: no step there
        slide = np.where(inside, cover * np.clip(v_lo - v_up + BELOW * taper, 0.0, None), 0.0)
        top = v_up - band
        edge = v_up + LASH + slide  # the lid's new edge: its lashes' lower end
        # the lid and the skin above it: [top, edge] samples [top, v_up + LASH] (stretched); below it the eye as is
        src_v = np.where(v < edge, top + (v - top) * (band + LASH) / np.maximum(band + LASH + slide, 1e-6), v)
        src_v = np.where(v < top, v, src_v)
        dv = (src_v - v) * w
        map_x = (xx + dv * ey[0]).astype(np.float32)
        map_y = (yy + dv * ey[1]).astype(np.float32)
        patch = cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # anti-alias the lid's edge over a pixel
        alpha = np.clip((edge - v) * w + 0.5, 0.0, 1.0)[..., None]
        region = face[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
        blended = alpha * patch.astype(np.float32) + (1 - alpha) * region
        if out is face:
            out = face.copy()
        out[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out
