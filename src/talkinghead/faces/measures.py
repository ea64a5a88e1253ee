"""Face-size-free measures of a face's 68 landmarks: how open the mouth and the eyes are, in inter-ocular
distances, so that they compare across people and photo sizes; and the similarity transform between two shapes."""

from __future__ import annotations

import numpy as np

INNER_LIP_PAIRS = np.array([[61, 67], [62, 66], [63, 65]])
LEFT_EYE, RIGHT_EYE = np.arange(36, 42), np.arange(42, 48)
EYELID_PAIRS = np.array([[37, 41], [38, 40], [43, 47], [44, 46]])
JAW_LEFT, JAW_RIGHT, NOSE_BRIDGE = np.arange(1, 4), np.arange(13, 16), np.arange(27, 31)
"""The jaw line's sides at the height of the eyes and nose (image left and right), and the nose bridge."""


def eye_centres(lmk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lmk = np.asarray(lmk, np.float64)
    return lmk[..., LEFT_EYE, :].mean(-2), lmk[..., RIGHT_EYE, :].mean(-2)


def interocular(lmk: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (pixels), per face."""
    a, b = eye_centres(lmk)
    return np.linalg.norm(b - a, axis=-1)


def mouth_opening(lmk: np.ndarray) -> np.ndarray:
    """Inner-lip distance over the inter-ocular distance, per face ``(..., 68, 2)`` → ``(...)``."""
    lmk = np.asarray(lmk, np.float64)
    gap = np.linalg.norm(lmk[..., INNER_LIP_PAIRS[:, 0], :] - lmk[..., INNER_LIP_PAIRS[:, 1], :], axis=-1).mean(-1)
    return (gap / np.maximum(interocular(lmk), 1e-9)).astype(np.float32)


def eye_opening(lmk: np.ndarray) -> np.ndarray:
    """Eyelid distance over the inter-ocular distance (both eyes' mean): blinks show as dips."""
    lmk = np.asarray(lmk, np.float64)
    gap = np.linalg.norm(lmk[..., EYELID_PAIRS[:, 0], :] - lmk[..., EYELID_PAIRS[:, 1], :], axis=-1).mean(-1)
    return (gap / np.maximum(interocular(lmk), 1e-9)).astype(np.float32)


def turn(lmk: np.ndarray) -> np.ndarray:
    """Where the nose bridge lies between the jaw line's sides, along the eye line, per face ``(..., 68, 2)`` →
    ``(...)``: about 0.5 for a face seen from the front, towards 0 or 1 as it turns to either side. It is the share
    of the face's width that the image-left cheek takes (1 - it: the right cheek's)."""
    lmk = np.asarray(lmk, np.float64)
    a, b = eye_centres(lmk)
    u = (b - a) / np.maximum(np.linalg.norm(b - a, axis=-1, keepdims=True), 1e-9)
    along = (lmk * u[..., None, :]).sum(-1)
    left, right = along[..., JAW_LEFT].mean(-1), along[..., JAW_RIGHT].mean(-1)
    return ((along[..., NOSE_BRIDGE].mean(-1) - left) / np.maximum(right - left, 1e-9)).astype(np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (scale, rotation, translation) mapping ``src`` points onto ``dst``: 2x3 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    cov = b.T @ a / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, d]) @ vt
    scale = (s * np.array([1.0, d])).sum() / max(a.var(0).sum(), 1e-12)
    m = scale * rot
    return np.hstack([m, (md - m @ ms)[:, None]])


def apply(mat: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (np.asarray(points, np.float64) @ mat[:, :2].T + mat[:, 2]).astype(np.float32)
