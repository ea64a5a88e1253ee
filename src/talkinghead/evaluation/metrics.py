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


# -- image metrics (uint8 RGB images of equal size) -----------------------------------------------------------


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two ``(H, W, 3) uint8`` RGB images (range [-1, 1], 1 = identical)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255))


def psnr(a: np.ndarray, b: np.ndarray, cap: float = 100.0) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (peak 255); identical images give ``cap``."""
    a, b = _pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse <= 0.0:
        return float(cap)
    return float(min(cap, 10.0 * np.log10(255.0**2 / mse)))


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher = more high-frequency detail)."""
    import cv2

    gray = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(gray, cv2.CV_64F, ksize=3).var())


def sharpness_ratio(gen: np.ndarray, real: np.ndarray) -> float:
    """``sharpness(gen) / sharpness(real)``: ~1 = as detailed as the real frame, < 1 = blurrier; NaN if real is flat."""
    gen, real = _pair(gen, real)
    ref = sharpness(real)
    return float(sharpness(gen) / ref) if ref > 1e-9 else float("nan")


def csim(emb_a: np.ndarray | None, emb_b: np.ndarray | None) -> float:
    """Cosine similarity of two identity embeddings (1 = same direction); NaN when either is missing."""
    if emb_a is None or emb_b is None:
        return float("nan")
    a = np.asarray(emb_a, np.float64).ravel()
    b = np.asarray(emb_b, np.float64).ravel()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else float("nan")


# -- face metrics (dlib) -----------------------------------------------------------------------------------------

_DETECTORS: list[object] = []


def _detector() -> object:
    """One dlib detector per process (building one takes ~0.3 s)."""
    if not _DETECTORS:
        from talkinghead.faces.detect import FaceDetector

        _DETECTORS.append(FaceDetector(max_side=1024))
    return _DETECTORS[0]


def _face_box(image: np.ndarray, fallback: np.ndarray | None) -> np.ndarray | None:
    """Box ``(x0, y0, x1, y1)`` of the largest detected face, else the bounds of ``fallback`` landmarks, else None."""
    from talkinghead.faces.landmarks import landmark_box

    faces = _detector().detect_thorough(image)  # type: ignore[attr-defined]
    if faces:
        return np.asarray(faces[0].box, np.float64)
    if fallback is not None and np.isfinite(fallback).all():
        return landmark_box(np.asarray(fallback, np.float32)).astype(np.float64)
    return None


def detect_face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """68 landmarks ``(68, 2) float32`` of the largest face *detected* in a uint8 RGB image, or None (no hint is
    used, so a generated image that does not look like a face gets None rather than a landmark set)."""
    from talkinghead.faces.landmarks import LandmarkPredictor

    box = _face_box(image, None)
    return None if box is None else LandmarkPredictor().predict(image, box)


def identity_embedding(image_rgb: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray | None:
    """dlib's 128-d face-recognition ResNet descriptor ``(128,) float64`` of the largest face in a uint8 RGB image.

    The face is found by dlib's detector; if it finds none and ``landmarks`` ``(68, 2)`` are given, their bounding
    box is used instead (the 68-point shape is then re-fitted on the pixels). None when there is no face.
    This network is used for evaluation only: it is not part of any training loss.
    """
    from talkinghead.faces.identity import face_descriptor
    from talkinghead.faces.landmarks import LandmarkPredictor

    image = np.ascontiguousarray(np.asarray(image_rgb, np.uint8))
    box = _face_box(image, landmarks)
    if box is None:
        return None
    return face_descriptor(image, LandmarkPredictor().predict(image, box))


def generated_nme(image: np.ndarray, target: np.ndarray) -> float:
    """NME of the landmarks detected on a generated image against the ``(68, 2)`` landmarks it was asked for
    (normalised by the target's outer-eye distance); NaN when no face is detected."""
    found = detect_face_landmarks(image)
    return float("nan") if found is None else float(landmark_nme(found, target))
