"""What the networks take, made from crops and landmarks the same way in training, fine-tuning and inference."""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.faces.sketch import draw_sketch, feature_region, hidden_features
from talkinghead.models.bundle import ModelBundle


def to_input(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3) uint8`` → ``(N, 3, H, W) float32`` in [-1, 1]."""
    return (images.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2).copy()


def sketches_at(landmarks: np.ndarray, frame_size: int, size: int) -> np.ndarray:
    """Landmarks ``(N, 68, 2)`` in ``frame_size``² pixels → sketches ``(N, 3, size, size)`` in [-1, 1]."""
    scale = size / frame_size
    return to_input(np.stack([draw_sketch((p + 0.5) * scale - 0.5, size) for p in landmarks]))


def generation_regions(landmarks: np.ndarray, frame_size: int, size: int, grow: float,
                       eye_grow: float | None = None, sources: np.ndarray | None = None,
                       gap_grow: float = 0.03) -> np.ndarray:
    """Where the warp generator may use its generated pixels (``model.gen_region``, ``model.gen_region_eyes``): the
    mouth of each target grown by ``grow`` × the inter-ocular distance and its eyes by ``eye_grow`` (None: ``grow``),
    feathered by a 1-pixel Gaussian at ``size``. With ``sources`` (the source landmarks ``(K, 68, 2)``;
    ``model.gen_keep_visible``) only what they cannot show: the gap between the lips grown by ``gap_grow`` and the
    eyes not as open as theirs grown by ``eye_grow`` (:func:`~talkinghead.faces.sketch.hidden_features`). Landmarks
    ``(N, 68, 2)`` in ``frame_size``² pixels → ``(N, 1, size, size) float32`` in [0, 1]."""
    scale = size / frame_size
    eye_grow = grow if eye_grow is None else eye_grow
    out = []
    for p in landmarks:
        q = (p + 0.5) * scale - 0.5
        if sources is None:
            region = cv2.GaussianBlur(feature_region(q, size, grow, eye_grow), (0, 0), 1.0)
        else:  # anti-aliased already: a narrower feather, so that it stays off the lips (2-3 pixels at 64²)
            region = cv2.GaussianBlur(hidden_features(q, (sources + 0.5) * scale - 0.5, size, gap_grow, eye_grow),
                                      (0, 0), 0.5)
        out.append(region[None])
    return np.stack(out).astype(np.float32)


def embedder_inputs(bundle: ModelBundle, crops: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source crops ``(K, S0, S0, 3) uint8`` + landmarks → the embedder's frames and sketches at its resolution."""
    res = bundle.embedder.cfg.resolution if bundle.embedder is not None else bundle.config.resolution
    s0 = crops.shape[1]
    interp = cv2.INTER_AREA if s0 > res else cv2.INTER_CUBIC
    frames = np.stack([cv2.resize(c, (res, res), interpolation=interp) for c in crops]) if s0 != res else crops
    return to_input(frames), sketches_at(landmarks, s0, res)


def model_crops(bundle: ModelBundle, crops: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crops and landmarks at the model's resolution."""
    res = bundle.config.resolution
    s0 = crops.shape[1]
    if s0 == res:
        return crops, landmarks.astype(np.float32)
    interp = cv2.INTER_AREA if s0 > res else cv2.INTER_CUBIC
    out = np.stack([cv2.resize(c, (res, res), interpolation=interp) for c in crops])
    return out, ((landmarks + 0.5) * (res / s0) - 0.5).astype(np.float32)

