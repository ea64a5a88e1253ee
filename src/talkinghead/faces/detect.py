"""Face detection with dlib's HOG detector, on a downscaled copy of large frames for speed."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np


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

    def detect_thorough(self, image: np.ndarray) -> list[Face]:
        """For still images, where misses cost more than time: the union of detections at pyramid upsampling
        0 and 1 (each finds faces the other misses), overlapping boxes merged, largest first."""
        faces: list[Face] = []
        for up in (1, 0):
            for face in self.detect(image, upsample=up):
                if all(box_iou(face.box, f.box) < 0.5 for f in faces):
                    faces.append(face)
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def detect(
        self, frame: np.ndarray, region: tuple[int, int, int, int] | None = None, upsample: int | None = None
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
        rects, scores, _ = self._detector.run(np.ascontiguousarray(gray), up, self.threshold)
        faces = [
            Face(
                box=(r.left() / scale + ox, r.top() / scale + oy, (r.right() + 1) / scale + ox, (r.bottom() + 1) / scale + oy),
                score=float(s),
            )
            for r, s in zip(rects, scores, strict=True)
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
