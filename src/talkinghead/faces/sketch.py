"""Rasterise 68 landmarks into the paper's conditioning image: each facial part in its own colour on black.

The same function draws training sketches and inference sketches, so the two never drift apart.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.faces.measures import EYELID_PAIRS, interocular

# (first index, last index inclusive, closed contour, RGB colour)
PARTS: tuple[tuple[str, int, int, bool, tuple[int, int, int]], ...] = (
    ("jaw", 0, 16, False, (255, 255, 255)),
    ("right_brow", 17, 21, False, (255, 140, 0)),
    ("left_brow", 22, 26, False, (255, 220, 0)),
    ("nose_bridge", 27, 30, False, (0, 120, 255)),
    ("nostrils", 30, 35, False, (0, 220, 255)),
    ("right_eye", 36, 41, True, (0, 255, 60)),
    ("left_eye", 42, 47, True, (170, 255, 0)),
    ("outer_lips", 48, 59, True, (255, 0, 90)),
    ("inner_lips", 60, 67, True, (220, 0, 255)),
)

_SHIFT = 4  # sub-pixel precision bits for OpenCV's drawing


def line_width(size: int) -> int:
    """Stroke width for a sketch whose longer side is ``size`` pixels: 1 px at 64-128, 2 at 256, 4 at 512."""
    return max(1, int(round(size / 128)))


def draw_sketch(landmarks: np.ndarray, size: int | tuple[int, int], thickness: int | None = None) -> np.ndarray:
    """``(68, 2)`` landmarks in pixels → ``(H, W, 3) uint8`` RGB sketch; ``size`` is ``S`` or ``(H, W)``."""
    h, w = (size, size) if isinstance(size, int) else size
    canvas = np.zeros((h, w, 3), dtype=np.uint8)
    lmk = np.asarray(landmarks, dtype=np.float64)
    if lmk.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lmk.shape}")
    if not np.isfinite(lmk).all():
        return canvas
    pts = np.round(lmk * (1 << _SHIFT)).astype(np.int32)
    t = thickness or line_width(max(h, w))
    for _, a, b, closed, colour in PARTS:
        cv2.polylines(canvas, [pts[a : b + 1]], closed, colour, thickness=t, lineType=cv2.LINE_AA, shift=_SHIFT)
    return canvas



def feature_region(landmarks: np.ndarray, size: int, grow: float = 0.12, eye_grow: float | None = None) -> np.ndarray:
    """Where a warp of another frame cannot show the truth: the eyes and the mouth (lips and what lies between
    them), grown by ``grow`` × the inter-ocular distance (the eyes by ``eye_grow`` where given). ``(68, 2)`` pixels
    → ``(size, size) float32`` in {0, 1}. Landmarks that are not finite give an all-ones mask (nothing is known, so
    nothing is ruled out)."""
    lmk = np.asarray(landmarks, dtype=np.float64)
    if lmk.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lmk.shape}")
    if not np.isfinite(lmk).all():
        return np.ones((size, size), dtype=np.float32)
    iod = float(interocular(lmk))
    eye_grow = grow if eye_grow is None else eye_grow
    mask = np.zeros((size, size), dtype=np.uint8)
    for polygons, g in (((lmk[36:42], lmk[42:48]), eye_grow), ((lmk[48:60],), grow)):
        mask |= _grown(mask.shape, polygons, int(round(g * iod)), 1)
    return mask.astype(np.float32)


def _grown(shape: tuple[int, ...], polygons: tuple[np.ndarray, ...], radius: int, value: int) -> np.ndarray:
    """``polygons`` (pixels) filled with ``value`` on a new ``uint8`` canvas, dilated by a disc of ``radius``."""
    part = np.zeros(shape, dtype=np.uint8)
    for points in polygons:
        _fill(part, points, value)
    if radius > 0:
        part = cv2.dilate(part, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return part


def eyes_as_open(target: np.ndarray, sources: np.ndarray, ratio: float = 0.75) -> tuple[bool, bool]:
    """Per eye (36-41, 42-47): whether its opening in ``target`` ``(68, 2)`` is within ``ratio``-``1 / ratio``
    times its opening in ``sources`` ``(K, 68, 2)`` (median), so that the sources show it as it is. A blink, or an
    eye opened wider than any source shows it, is not."""

    def opening(p: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        return np.linalg.norm(p[..., pairs[:, 0], :] - p[..., pairs[:, 1], :], axis=-1).mean(-1)

    out = []
    for pairs in (EYELID_PAIRS[:2], EYELID_PAIRS[2:]):
        r = float(opening(target, pairs)) / max(float(np.median(opening(sources, pairs))), 1e-6)
        out.append(ratio <= r <= 1.0 / ratio)
    return out[0], out[1]


def _fill(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    cv2.fillPoly(mask, [np.round(points * (1 << _SHIFT)).astype(np.int32)], value, lineType=cv2.LINE_8, shift=_SHIFT)


def visible_features(target: np.ndarray, sources: np.ndarray, size: int, eye_ratio: float = 0.75) -> np.ndarray:
    """Where the sources' own pixels show the target's eyes and lips, so painting them is not needed: the lips (the
    outer lip polygon less the gap between the inner lips) and each eye :func:`eyes_as_open` says the sources show.
    ``target`` ``(68, 2)`` and ``sources`` ``(K, 68, 2)`` in pixels of a ``size``² frame → ``(size, size) float32``
    in {0, 1}; all zeros where landmarks are not finite."""
    lmk, src = _pair(target, sources)
    mask = np.zeros((size, size), dtype=np.uint8)
    if not (np.isfinite(lmk).all() and np.isfinite(src).all()):
        return mask.astype(np.float32)
    for eye, shown in zip((lmk[36:42], lmk[42:48]), eyes_as_open(lmk, src, eye_ratio), strict=True):
        if shown:
            _fill(mask, eye, 1)
    _fill(mask, lmk[48:60], 1)
    _fill(mask, lmk[60:68], 0)
    return mask.astype(np.float32)


def hidden_features(target: np.ndarray, sources: np.ndarray, size: int, gap_grow: float, eye_grow: float,
                    eye_ratio: float = 0.75, supersample: int = 4) -> np.ndarray:
    """What the sources cannot show, so only generated pixels can: the gap between the target's inner lips (an
    open mouth's teeth and dark) grown by ``gap_grow`` × the inter-ocular distance, and each eye that is not as
    open as in the sources (:func:`eyes_as_open`) grown by ``eye_grow``. Landmarks as in
    :func:`visible_features` → ``(size, size) float32`` in [0, 1], the share of each pixel covered (drawn
    ``supersample`` times larger, then area-averaged); all ones where landmarks are not finite (nothing is known,
    so nothing is ruled out)."""
    lmk, src = _pair(target, sources)
    if not (np.isfinite(lmk).all() and np.isfinite(src).all()):
        return np.ones((size, size), dtype=np.float32)
    big = size * supersample
    pts = (lmk + 0.5) * supersample - 0.5
    iod = float(interocular(pts))
    mask = np.zeros((big, big), dtype=np.uint8)
    parts = [(pts[60:68], gap_grow)]
    parts += [(eye, eye_grow) for eye, shown in zip((pts[36:42], pts[42:48]), eyes_as_open(lmk, src, eye_ratio),
                                                   strict=True) if not shown]
    for points, grow in parts:
        mask |= _grown(mask.shape, (points,), int(round(grow * iod)), 255)
    return cv2.resize(mask.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)


def _pair(target: np.ndarray, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lmk = np.asarray(target, dtype=np.float64)
    src = np.asarray(sources, dtype=np.float64)
    if lmk.shape != (68, 2) or src.ndim != 3 or src.shape[1:] != (68, 2):
        raise ValueError(f"expected (68, 2) and (K, 68, 2) landmarks, got {lmk.shape} and {src.shape}")
    return lmk, src
