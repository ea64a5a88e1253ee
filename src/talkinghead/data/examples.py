"""Built-in examples that need no download: scikit-image's public-domain astronaut photo, and short videos
made from it by known affine motions (for the demo and for tracking tests)."""

from __future__ import annotations

import math

import cv2
import numpy as np


def astronaut() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), shipped by scikit-image: ``(512, 512, 3) uint8`` RGB."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - scikit-image is a dependency
        raise RuntimeError("the built-in example needs scikit-image: pip install scikit-image") from exc
    return np.ascontiguousarray(data.astronaut())


def affine_motion(n_frames: int, fps: float = 25.0, amplitude: float = 1.0) -> list[np.ndarray]:
    """Smooth head-like motion as 2x3 affine matrices about the origin: a rotation of up to ±8°, a scale of
    0.9-1.1 and a translation of up to ±20 px (times ``amplitude``), each a sinusoid of its own period."""
    out = []
    for i in range(n_frames):
        t = i / fps
        angle = math.radians(8 * amplitude) * math.sin(2 * math.pi * t / 2.1)
        scale = 1.0 + 0.1 * amplitude * math.sin(2 * math.pi * t / 2.9 + 1.0)
        tx = 20 * amplitude * math.sin(2 * math.pi * t / 1.7)
        ty = 12 * amplitude * math.sin(2 * math.pi * t / 2.3 + 0.5)
        c, s = scale * math.cos(angle), scale * math.sin(angle)
        out.append(np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64))
    return out


def warp_video(
    image: np.ndarray, motions: list[np.ndarray], center: tuple[float, float], size: int = 384
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of ``size``² showing ``image`` moved by each motion about ``center``.

    Returns the frames and, per frame, the 2x3 matrix that maps a pixel of ``image`` to that frame.
    """
    cx, cy = center
    frames, mats = [], []
    for m in motions:
        a = m[:, :2]
        # image → centred on the face → motion → placed in the middle of the output
        t = -a @ np.array([cx, cy]) + m[:, 2] + np.array([size / 2, size / 2])
        full = np.hstack([a, t[:, None]])
        frames.append(cv2.warpAffine(image, full, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        mats.append(full)
    return frames, mats


def apply_affine(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    return (np.asarray(points, np.float64) @ mat[:, :2].T + mat[:, 2]).astype(np.float32)


ASTRONAUT_FACE_CENTER = (225.0, 135.0)


def astronaut_video(seconds: float = 3.0, fps: float = 25.0, size: int = 384) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The astronaut photo moved by :func:`affine_motion`: frames and the photo→frame matrices."""
    n = int(round(seconds * fps))
    return warp_video(astronaut(), affine_motion(n, fps), ASTRONAUT_FACE_CENTER, size)
