"""What the networks take, made from crops and landmarks the same way in training, fine-tuning and inference."""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.faces.sketch import draw_sketch, feature_region
from talkinghead.models.bundle import ModelBundle


def to_input(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3) uint8`` → ``(N, 3, H, W) float32`` in [-1, 1]."""
    return (images.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2).copy()


def sketches_at(landmarks: np.ndarray, frame_size: int, size: int) -> np.ndarray:
    """Landmarks ``(N, 68, 2)`` in ``frame_size``² pixels → sketches ``(N, 3, size, size)`` in [-1, 1]."""
    scale = size / frame_size
    return to_input(np.stack([draw_sketch((p + 0.5) * scale - 0.5, size) for p in landmarks]))


def generation_regions(landmarks: np.ndarray, frame_size: int, size: int, grow: float,
                       eye_grow: float | None = None) -> np.ndarray:
    """Where the warp generator may use its generated pixels (``model.gen_region``, ``model.gen_region_eyes``): the
    mouth of each target grown by ``grow`` × the inter-ocular distance and its eyes by ``eye_grow`` (None: ``grow``),
    feathered by a 1-pixel Gaussian at ``size``. Landmarks ``(N, 68, 2)`` in ``frame_size``² pixels → ``(N, 1, size,
    size) float32`` in [0, 1]."""
    scale = size / frame_size
    return np.stack([cv2.GaussianBlur(feature_region((p + 0.5) * scale - 0.5, size, grow, eye_grow), (0, 0), 1.0)[None]
                     for p in landmarks]).astype(np.float32)


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

