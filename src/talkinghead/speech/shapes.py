"""Face-size-free landmark geometry for speech: canonical frames, neutral faces, mouth opening.

*Canonical coordinates*: a face's landmarks translated, rotated and scaled so that the eye centres lie at
(-0.5, 0) and (0.5, 0): one unit is the inter-ocular distance, whatever the photo's size, so displacements
measured on one person transfer to any other face.
"""

from __future__ import annotations

import numpy as np

from talkinghead.faces.measures import apply, eye_centres, mouth_opening, similarity
from talkinghead.inference.retarget import STABLE

JAW = np.arange(0, 17)
MOUTH = np.arange(48, 68)
SPEECH_POINTS = np.concatenate([JAW, MOUTH])
"""The points the audio model moves: the jaw line and the lips (37)."""
UPPER_POINTS = np.arange(17, 48)
"""Brows, nose and eyes (31): moved by the idle-motion bank (blinks, brow raises)."""


def to_canonical_matrix(lmk: np.ndarray) -> np.ndarray:
    """2x3 similarity taking one face ``(68, 2)`` to canonical coordinates (eye centres at (∓0.5, 0))."""
    a, b = eye_centres(lmk)
    return similarity(np.stack([a, b]), np.array([[-0.5, 0.0], [0.5, 0.0]]))


def invert(mat: np.ndarray) -> np.ndarray:
    m = mat[:, :2]
    inv = np.linalg.inv(m)
    return np.hstack([inv, (-inv @ mat[:, 2])[:, None]])


def align_clip(lmks: np.ndarray) -> np.ndarray:
    """Landmarks of a clip ``(N, 68, 2)`` with the head's in-plane motion removed: each frame mapped onto the clip's
    median face by a similarity fitted on the points that move little with expression, then into canonical
    coordinates. Returns ``(N, 68, 2) float32``."""
    lmks = np.asarray(lmks, np.float64)
    ref = np.median(lmks, axis=0)
    for _ in range(2):  # refine the reference once on aligned frames
        aligned = np.stack([apply(similarity(f[STABLE], ref[STABLE]), f) for f in lmks]).astype(np.float64)
        ref = np.median(aligned, axis=0)
    return apply(to_canonical_matrix(ref), aligned.reshape(-1, 2)).reshape(aligned.shape)


def neutral_face(aligned: np.ndarray, closed_fraction: float = 0.15) -> np.ndarray:
    """A clip's resting face in canonical coordinates: the median of all frames, with the jaw and lips taken
    from the frames whose mouth is most closed (the lowest ``closed_fraction`` of mouth opening)."""
    neutral = np.median(aligned, axis=0)
    opening = mouth_opening(aligned)
    closed = opening <= np.quantile(opening, closed_fraction)
    neutral[SPEECH_POINTS] = np.median(aligned[closed][:, SPEECH_POINTS], axis=0)
    return neutral.astype(np.float32)


def speech_targets(lmks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the audio model learns from a clip: ``(displacements (N, 37, 2), aligned (N, 68, 2), neutral (68, 2))``;
    displacements of the jaw and lips from the neutral face, canonical units."""
    aligned = align_clip(lmks)
    neutral = neutral_face(aligned)
    return (aligned[:, SPEECH_POINTS] - neutral[SPEECH_POINTS]).astype(np.float32), aligned, neutral
