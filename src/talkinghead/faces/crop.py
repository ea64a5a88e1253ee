"""Square face crops: one stable box per clip (VoxCeleb-like framing), kept so results can be pasted back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropBox:
    """A square region of the original frame: top-left ``(x0, y0)`` and ``side``, in frame pixels (may exceed it)."""

    x0: float
    y0: float
    side: float

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.side], dtype=np.float32)


def face_crop_box(landmarks: np.ndarray, margin: float = 1.9, shift_up: float = 0.1) -> CropBox:
    """One square box for a face or a whole clip of faces.

    ``landmarks``: ``(68, 2)`` or ``(T, 68, 2)``. The box is centred on the median face centre (moved up by
    ``shift_up`` x face size, since landmarks stop at the brows); its side is ``margin`` x the 90th percentile of
    the per-frame landmark extent, plus the 5-95 % range of the face centre's motion, so a moving head stays in.
    """
    lmk = np.asarray(landmarks, dtype=np.float64)
    if lmk.ndim == 2:
        lmk = lmk[None]
    lo, hi = lmk.min(axis=1), lmk.max(axis=1)
    centers = (lo + hi) / 2
    extent = (hi - lo).max(axis=1)
    size = float(np.percentile(extent, 90))
    motion = np.percentile(centers, 95, axis=0) - np.percentile(centers, 5, axis=0)
    side = margin * size + float(motion.max())
    cx, cy = np.median(centers, axis=0)
    cy -= shift_up * size
    return CropBox(float(cx - side / 2), float(cy - side / 2), float(side))


def fit_inside(box: CropBox, height: int, width: int, max_shift: float = 0.15, max_shrink: float = 0.1) -> CropBox:
    """``box`` shrunk about its centre by up to ``max_shrink`` of its side towards the picture's shorter side, then
    moved by up to ``max_shift`` x its side along each axis so that it lies within a ``height x width`` picture
    (centred on it along an axis the box is still longer than): a photo's crop then needs as little filling from
    outside the picture as the face's framing allows."""
    side = float(np.clip(min(height, width), box.side * (1.0 - max_shrink), box.side))
    grow = (box.side - side) / 2
    box = CropBox(box.x0 + grow, box.y0 + grow, side)

    def along(start: float, length: int) -> float:
        end = start + box.side
        if box.side >= length:
            move = (length - box.side) / 2 - start
        elif start < 0:
            move = -start
        elif end > length:
            move = length - end
        else:
            return start
        return start + float(np.clip(move, -max_shift * box.side, max_shift * box.side))

    return CropBox(along(box.x0, width), along(box.y0, height), box.side)


def crop_image(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Cut ``box`` out of ``frame`` and resize to ``(size, size)``.

    Parts of the box outside the frame (a tight headshot: the face fills the photo, the box is wider) are filled
    by :func:`_fill_outside`: the border's colours, smoothed more the further out, not repeated border pixels
    (those show as streaks the length of the padding, which the warp then moves with the head)."""
    h, w = frame.shape[:2]
    x0, y0 = int(round(box.x0)), int(round(box.y0))
    side = max(1, int(round(box.side)))
    x1, y1 = x0 + side, y0 + side
    pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    region = frame[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if any(pad):
        if region.size == 0:
            region = np.zeros((side, side) + frame.shape[2:], dtype=frame.dtype)
            pad = (0, 0, 0, 0)
        else:
            region = cv2.copyMakeBorder(region, *pad, borderType=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    out = cv2.resize(region, (size, size), interpolation=interp)
    if any(pad):
        k = size / side
        top, bottom, left, right = (int(round(p * k)) for p in pad)
        out = _fill_outside(out, top, size - bottom, left, size - right)
    return out


FILL_BLUR = 0.05
"""Blur (σ, in crop sides) of the fill outside the frame where it is smoothest."""
FILL_RAMP = 0.02
"""Distance (in crop sides) over which the fill goes from the repeated border to the blurred colours."""


def _fill_outside(crop: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Replace the pixels of ``crop`` outside rows ``y0:y1`` and columns ``x0:x1`` (the frame's part) by its
    repeated border blended into a strong blur of it with the distance from the frame: smooth colour, no streaks,
    no mirrored features. The frame's own pixels are returned unchanged."""
    size = crop.shape[0]
    inside = np.zeros(crop.shape[:2], np.uint8)
    inside[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 1
    if inside.all() or not inside.any():
        return crop
    dist = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    alpha = np.clip(dist / max(1.0, FILL_RAMP * size), 0.0, 1.0)
    blurred = cv2.GaussianBlur(crop, (0, 0), sigmaX=max(1.0, FILL_BLUR * size), borderType=cv2.BORDER_REPLICATE)
    a = alpha.reshape(alpha.shape + (1,) * (crop.ndim - 2))
    mixed = crop.astype(np.float32) * (1.0 - a) + blurred.astype(np.float32) * a
    if np.issubdtype(crop.dtype, np.integer):
        mixed = np.clip(np.rint(mixed), np.iinfo(crop.dtype).min, np.iinfo(crop.dtype).max)
    out = mixed.astype(crop.dtype)
    out[inside.astype(bool)] = crop[inside.astype(bool)]
    return out


def to_crop_coords(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Frame pixels → crop pixels (uses the same rounding as :func:`crop_image`)."""
    x0, y0, side = round(box.x0), round(box.y0), max(1, round(box.side))
    return ((np.asarray(points, dtype=np.float32) - np.array([x0, y0], np.float32)) * (size / side)).astype(np.float32)


def to_frame_coords(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Crop pixels → frame pixels; the inverse of :func:`to_crop_coords`."""
    x0, y0, side = round(box.x0), round(box.y0), max(1, round(box.side))
    return (np.asarray(points, dtype=np.float32) * (side / size) + np.array([x0, y0], np.float32)).astype(np.float32)
