"""Small, tested metric functions."""

from __future__ import annotations

import numpy as np

OUTER_EYE_CORNERS = (36, 45)
"""300-W convention: normalise by the distance between the outer eye corners."""


def eye_distance(landmarks: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance of ``(..., 68, 2)`` landmarks."""
    lmk = np.asarray(landmarks, dtype=np.float64)
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(lmk[..., a, :] - lmk[..., b, :], axis=-1)


def landmark_nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Normalised mean error: mean point-to-point distance / outer-eye distance of ``truth``. Shapes ``(..., 68, 2)``."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    err = np.linalg.norm(pred - truth, axis=-1).mean(axis=-1)
    return err / np.maximum(eye_distance(truth), 1e-9)
