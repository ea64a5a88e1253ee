"""Face detection with dlib's HOG detector, on a downscaled copy of large frames for speed; for still pictures
in which it finds nothing, dlib's CNN detector (:class:`CnnFaceDetector`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import dlib
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Face:
    """A detected face: box ``(x0, y0, x1, y1)`` in frame pixels and the detector's score."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB ``(H, W, 3) uint8`` → gray ``(H, W) uint8`` (what dlib's HOG and shape models see)."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def box_iou(a: tuple[float, ...] | np.ndarray, b: tuple[float, ...] | np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


WEAK_HOG = -0.7
"""For still pictures in which HOG finds no face: its detections scoring above this that dlib's CNN detector
confirms are taken (:meth:`FaceDetector.detect_still`). The box is HOG's, because the landmark predictor was
trained on HOG's boxes: started from the CNN's own boxes, its fits failed (NME > 0.08) on 12 of the 111
annotated photos both detectors find (5 with the boxes moved to where HOG's sit on average; turned faces), and
on none from HOG's. Of the 17 corpus pictures with no face HOG finds (``benchmarks/face_detection.py``), 4
people are found this way (a 3D cartoon, a grimace, a bowed head, a dark frame; HOG scores -0.41 to 0); a
profile the CNN finds is left out (HOG -0.94 there; the predictor cannot fit a profile), and so are 11 animals
and a group photo of small faces, which the CNN does not find either."""


class FaceDetector:
    """dlib frontal HOG face detector.

    ``max_side``: frames (or regions) are downscaled so the longer side is at most this many pixels before
    detection; boxes are returned in the original frame's pixels. ``upsample``: dlib's pyramid upsampling
    (0 finds faces of about 80 px and more in the downscaled image, 1 about 40 px, at ~4x the cost).
    """

    def __init__(self, max_side: int = 640, upsample: int = 0, threshold: float = 0.0) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self.max_side = max_side
        self.upsample = upsample
        self.threshold = threshold
        self._cnn: CnnFaceDetector | None = None

    def detect_thorough(self, image: np.ndarray, threshold: float | None = None) -> list[Face]:
        """For still images, where misses cost more than time: the union of detections at pyramid upsampling
        0 and 1 (each finds faces the other misses), overlapping boxes merged, largest first."""
        faces: list[Face] = []
        for up in (1, 0):
            for face in self.detect(image, upsample=up, threshold=threshold):
                if all(box_iou(face.box, f.box) < 0.5 for f in faces):
                    faces.append(face)
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def detect_still(self, image: np.ndarray) -> list[Face]:
        """For a still picture: :meth:`detect_thorough`; where that finds nothing, the HOG detections scoring above
        :data:`WEAK_HOG` that dlib's CNN detector (:class:`CnnFaceDetector`, slower) confirms as faces (overlap
        0.5 or more; the best-scoring one per face the CNN finds). Largest first."""
        faces = self.detect_thorough(image)
        if faces:
            return faces
        if self._cnn is None:
            self._cnn = CnnFaceDetector()
        confirmed = self._cnn.detect_thorough(image)
        if not confirmed:
            return []
        weak = self.detect_thorough(image, threshold=WEAK_HOG)
        faces = []
        for face in confirmed:  # each confirmed face lends its best-scoring weak detection (once)
            on_it = [w for w in weak if box_iou(w.box, face.box) >= 0.5 and w not in faces]
            if on_it:
                faces.append(max(on_it, key=lambda w: w.score))
        if faces:
            log.info("a face below the HOG detector's threshold, confirmed by dlib's CNN detector")
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def detect(
        self, frame: np.ndarray, region: tuple[int, int, int, int] | None = None, upsample: int | None = None,
        threshold: float | None = None,
    ) -> list[Face]:
        """Faces in ``frame`` (RGB or gray), largest first; ``region`` restricts the search to ``(x0, y0, x1, y1)``."""
        gray = to_gray(frame)
        ox = oy = 0
        if region is not None:
            h, w = gray.shape
            x0, y0, x1, y1 = (int(round(v)) for v in region)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 - x0 < 32 or y1 - y0 < 32:
                return []
            gray = gray[y0:y1, x0:x1]
            ox, oy = x0, y0
        scale = 1.0
        longest = max(gray.shape)
        if longest > self.max_side:
            scale = self.max_side / longest
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        up = self.upsample if upsample is None else upsample
        th = self.threshold if threshold is None else threshold
        rects, scores, _ = self._detector.run(np.ascontiguousarray(gray), up, th)
        faces = [
            Face(
                box=(r.left() / scale + ox, r.top() / scale + oy, (r.right() + 1) / scale + ox, (r.bottom() + 1) / scale + oy),
                score=float(s),
            )
            for r, s in zip(rects, scores, strict=True)
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


class CnnFaceDetector:
    """dlib's CNN face detector (MMOD, ``mmod_human_face_detector.dat``): it finds faces the HOG detector misses
    (turned further from the camera, a cartoon or 3D character, low contrast), at about 0.8 s for a picture scaled
    to 320 pixels and 3-4 s at 640 on 2 CPU cores (HOG: milliseconds). So it is used for still pictures only, when
    HOG finds nothing (:meth:`FaceDetector.detect_still`), never per video frame. Its boxes are its own (placed
    and sized unlike HOG's, for which the landmark predictor was trained)."""

    SIDES = (320, 640)
    """The picture's longer side for each try, smallest first (it finds faces of about 80 pixels and more at
    that scale: a quarter of the picture at 320, an eighth at 640); a try that would enlarge the picture more
    than 2x is skipped."""

    def __init__(self, threshold: float = 0.0) -> None:
        from talkinghead.faces.models import CNN_DETECTOR, model_file

        self._detector = dlib.cnn_face_detection_model_v1(str(model_file(CNN_DETECTOR)))
        self.threshold = threshold

    def detect(self, image: np.ndarray, side: int) -> list[Face]:
        """Faces in ``image`` (RGB or gray) scaled so its longer side is ``side`` pixels; boxes in the image's own
        pixels, largest first."""
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        scale = side / max(rgb.shape[:2])
        if scale != 1.0:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        faces = [Face(box=(d.rect.left() / scale, d.rect.top() / scale, (d.rect.right() + 1) / scale,
                           (d.rect.bottom() + 1) / scale), score=float(d.confidence))
                 for d in self._detector(np.ascontiguousarray(rgb), 0) if d.confidence >= self.threshold]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def detect_thorough(self, image: np.ndarray) -> list[Face]:
        """Faces at the first of :data:`SIDES` that finds any, largest first."""
        longest = max(image.shape[:2])
        for side in self.SIDES:
            if side > 2 * longest:
                continue
            faces = self.detect(image, side)
            if faces:
                return faces
        return []
