"""Follow one face through a video: detect once, then let the landmarks carry the box.

Per frame the shape predictor runs on a box derived from the previous frame's landmarks (the detector box
at the last detection, moved and scaled with the landmarks), which costs ~1 ms instead of a detection's
10-40 ms. The detector runs again every ``detect_every`` frames and whenever the fit jumps (the new landmark
box overlaps the previous one by less than ``redetect_iou``) or the face region stops looking like the last frame's
(normalised cross-correlation below ``redetect_similarity``: a cut, or the face left), first in a region around the face, then in the
whole frame. When no face is found the frame gets no landmarks and the tracker searches again next frame. The box
follows the brows, eyes and nose only, and a fit whose size or proportions drift from the last detection's
(``redetect_scale``, ``redetect_shape``) is checked by a detection too (kept when the detector finds nothing, e.g. a
head turned further than it sees).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from talkinghead.config import TrackerConfig
from talkinghead.faces.detect import Face, FaceDetector, box_iou, to_gray
from talkinghead.faces.landmarks import LandmarkPredictor, landmark_box
from talkinghead.faces.smooth import OneEuroFilter, smooth_found

log = logging.getLogger(__name__)

SMALL_FACE = 100
"""Detector boxes smaller than this (pixels) are re-detected with pyramid upsampling (dlib's HOG finds ~80 px
faces without it)."""


@dataclass
class TrackResult:
    """One frame's outcome: ``landmarks`` is ``(68, 2) float32`` in frame pixels, or None when no face was found."""

    index: int
    landmarks: np.ndarray | None
    detected: bool
    """True when the detector ran on this frame (as opposed to following the previous landmarks)."""


def _patch(gray: np.ndarray, box: np.ndarray, side: int = 24) -> np.ndarray:
    """The face region as a small zero-mean, unit-norm vector: its dot product with the previous frame's is a
    normalised cross-correlation (~0.9+ between frames of one face, low after a cut or when the face is gone)."""
    h, w = gray.shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return np.zeros(side * side, np.float32)
    p = cv2.resize(gray[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    p -= p.mean()
    return p / max(float(np.linalg.norm(p)), 1e-6)


STABLE = slice(17, 48)
"""Brows, nose and eyes (iBUG 68): the points that place and size the next frame's box. The jaw line and the mouth
change with expression, and a bad fit of them, fed into the next box, grew from frame to frame (a yawn's jaw line
ran off into the background)."""


def _center_scale(lmk: np.ndarray) -> tuple[np.ndarray, float]:
    x0, y0, x1, y1 = landmark_box(lmk[STABLE])
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2], dtype=np.float64), float(max(x1 - x0, y1 - y0, 1.0))


def _proportions(lmk: np.ndarray) -> tuple[float, float]:
    """The fit's size (as :func:`_center_scale`) and its whole width over its brows-eyes-nose width."""
    a, b = landmark_box(lmk), landmark_box(lmk[STABLE])
    return float(max(b[2] - b[0], b[3] - b[1], 1.0)), float((a[2] - a[0]) / max(b[2] - b[0], 1.0))


class FaceTracker:
    """Stateful tracker: call :meth:`update` with consecutive frames (RGB or gray).

    ``name`` and ``option``: the video's name and the command-line option that picks its face; given them, the
    tracker notes (once, as a warning of this module's logger) that it found several faces and which it follows.
    """

    def __init__(self, config: TrackerConfig | None = None, fps: float = 25.0, name: str | None = None,
                 option: str = "--face-index") -> None:
        self.config = config or TrackerConfig()
        self.name, self.option = name, option
        self.most_faces = 0
        """The most faces one detection found while the tracker was choosing one (not following one)."""
        self._noted = False
        self.detector = FaceDetector(max_side=self.config.detect_max_side, upsample=self.config.upsample)
        self.predictor = LandmarkPredictor()
        self._filter = OneEuroFilter(fps, min_cutoff=self.config.smoothing) if self.config.smoothing > 0 else None
        self.detections = 0
        self.searches = 0
        """Thorough searches for a small face so far (see ``TrackerConfig.search_every``)."""
        self._searcher: FaceDetector | None = None
        self.reset()

    def reset(self) -> None:
        self._det_box: np.ndarray | None = None  # detector box at the last detection
        self._check = (1.0, 1.0)  # size and width ratio at the last detection (see _drifted)
        self._ref: tuple[np.ndarray, float] | None = None  # landmark centre/scale at that detection
        self._last: np.ndarray | None = None  # last raw (unsmoothed) landmarks
        self._patch: np.ndarray | None = None  # appearance of the face region in the last frame
        self._since_detect = 0
        self._since_search: int | None = None  # frames since the last thorough search (None: none yet)
        self._index = 0
        if self._filter is not None:
            self._filter.reset()

    # -- detection -------------------------------------------------------------------------------
    def _pick(self, faces: list[Face], near: np.ndarray | None) -> Face | None:
        if not faces:
            return None
        if near is None:
            i = self.config.face_index
            self.most_faces = max(self.most_faces, len(faces))
            if len(faces) > 1 and i < len(faces) and self.name is not None and not self._noted:
                self._noted = True
                which = "the largest" if i == 0 else f"face {i} by size"
                log.warning("%s shows %d faces; following %s (%s 0-%d picks one, 0 = largest)",
                            self.name, len(faces), which, self.option, len(faces) - 1)
            return faces[i] if i < len(faces) else None
        best = max(faces, key=lambda f: box_iou(f.box, near))
        return best if box_iou(best.box, near) > 0.2 else None

    def _detect(self, gray: np.ndarray) -> Face | None:
        self.detections += 1
        near = self._follow_box()
        if near is not None:
            x0, y0, x1, y1 = near
            side = max(x1 - x0, y1 - y0)
            pad = 0.6 * side
            region = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
            # a face under ~100 px (found by a search) needs the upsampled pyramid in its region too
            face = self._pick(self.detector.detect(gray, region=region, upsample=1 if side < SMALL_FACE else None),
                              near)
            if face is not None:
                return face
        face = self._pick(self.detector.detect(gray), near)
        if face is None and near is None:
            face = self._search(gray)
        return face

    def _search(self, gray: np.ndarray) -> Face | None:
        """The thorough search for a small face, at most every ``search_every`` frames (the first time at once)."""
        every = self.config.search_every
        if every <= 0 or (self._since_search is not None and self._since_search < every):
            return None
        self._since_search = 0
        self.searches += 1
        if self._searcher is None:
            self._searcher = FaceDetector(max_side=self.config.search_max_side, upsample=1)
        return self._pick(self._searcher.detect(gray), None)

    def _follow_box(self) -> np.ndarray | None:
        """The detector-style box the last landmarks imply."""
        if self._det_box is None or self._ref is None or self._last is None:
            return None
        c0, s0 = self._ref
        c, s = _center_scale(self._last)
        k = s / s0
        box = self._det_box.reshape(2, 2)
        return ((box - c0) * k + c).reshape(4)

    def _fit_detected(self, gray: np.ndarray, face: Face) -> np.ndarray:
        lmk = self.predictor.predict(gray, face.box)
        self._patch = _patch(gray, landmark_box(lmk))
        self._det_box = np.asarray(face.box, dtype=np.float64)
        self._ref = _center_scale(lmk)
        self._check = _proportions(lmk)
        self._since_detect = 0
        return lmk

    def _drifted(self, lmk: np.ndarray) -> bool:
        """Whether a followed fit's size or proportions have moved too far from the last detection's."""
        (scale, ratio), (now_scale, now_ratio) = self._check, _proportions(lmk)
        return (abs(now_scale / scale - 1) > self.config.redetect_scale
                or abs(now_ratio / ratio - 1) > self.config.redetect_shape)

    # -- per frame -------------------------------------------------------------------------------
    def _raw(self, gray: np.ndarray) -> tuple[np.ndarray | None, bool]:
        cfg = self.config
        box = self._follow_box()
        if box is None or self._since_detect + 1 >= cfg.detect_every:
            face = self._detect(gray)
            if face is None:
                return None, True
            return self._fit_detected(gray, face), True
        lmk = self.predictor.predict(gray, box)
        self._since_detect += 1
        assert self._last is not None
        patch = _patch(gray, landmark_box(lmk))
        jumped = box_iou(landmark_box(lmk), landmark_box(self._last)) < cfg.redetect_iou
        changed = self._patch is not None and float(patch @ self._patch) < cfg.redetect_similarity
        self._patch = patch
        if jumped or changed:
            face = self._detect(gray)
            if face is None:
                return None, True
            return self._fit_detected(gray, face), True
        if self._drifted(lmk):
            face = self._detect(gray)
            if face is not None:
                return self._fit_detected(gray, face), True
            self._check = _proportions(lmk)  # none found (a turned head): go on following
            return lmk, True
        return lmk, False

    @property
    def raw_landmarks(self) -> np.ndarray | None:
        """The last frame's landmarks before the One-Euro filter (None: no face): what fast motion, a blink, reads
        from without the filter's damping."""
        return self._last

    def update(self, frame: np.ndarray) -> TrackResult:
        gray = to_gray(frame)
        if self._since_search is not None:
            self._since_search += 1
        lmk, detected = self._raw(gray)
        index = self._index
        self._index += 1
        if lmk is None:
            self._last = None
            self._det_box = None
            if self._filter is not None:
                self._filter.reset()
            return TrackResult(index, None, detected)
        self._last = lmk
        out = lmk
        if self._filter is not None:
            assert self._ref is not None
            out = self._filter(lmk, scale=self._ref[1])
        return TrackResult(index, out, detected)

    def track(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, TrackResult]]:
        """Yield ``(frame, result)`` for each frame of an iterable (e.g. a :class:`~talkinghead.io.VideoReader`)."""
        for frame in frames:
            yield frame, self.update(frame)


def track_video(path: str, config: TrackerConfig | None = None, centred: float = 1.0) -> tuple[np.ndarray, float]:
    """Landmarks of every frame of a video ``(T, 68, 2) float32`` (NaN where no face was found), and its fps.

    The whole video is known, so the track is smoothed afterwards, centred on each frame (``centred``: σ in
    frames, :func:`~talkinghead.faces.smooth.smooth_track`), with the tracker's causal One-Euro filter off;
    ``centred=0`` keeps that filter as ``config.smoothing`` says."""
    from talkinghead.io.video import VideoReader

    config = config or TrackerConfig()
    if centred > 0:
        config = replace(config, smoothing=0.0)
    with VideoReader(path) as reader:
        tracker = FaceTracker(config, fps=reader.info.fps)
        out = np.stack([r.landmarks if r.landmarks is not None else np.full((68, 2), np.nan, np.float32)
                        for _, r in tracker.track(reader)])
        fps = reader.info.fps
    return smooth_found(out, centred), fps
