"""Source faces for animation: photos or frames of a video, cropped the way the training data was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.config import PrepareConfig
from talkinghead.errors import InputError, NoFaceError
from talkinghead.faces.crop import CropBox, crop_image, face_crop_box, to_crop_coords
from talkinghead.faces.detect import FaceDetector
from talkinghead.faces.landmarks import detect_landmarks
from talkinghead.faces.track import FaceTracker
from talkinghead.inference.retarget import apply, similarity
from talkinghead.io.images import IMAGE_EXTENSIONS, read_image
from talkinghead.io.video import VideoReader


@dataclass
class SourceFace:
    """One source frame: the full image, its crop box, the crop (``size``²) and landmarks in crop pixels."""

    image: np.ndarray
    box: CropBox
    crop: np.ndarray
    landmarks: np.ndarray
    origin: str


def _normalised(lmk: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return apply(similarity(lmk, ref), lmk)


def diverse_indices(landmarks: np.ndarray, n: int) -> list[int]:
    """``n`` frames whose (pose-normalised) landmark shapes differ most: farthest-point sampling from the median."""
    if len(landmarks) <= n:
        return list(range(len(landmarks)))
    ref = np.median(landmarks, axis=0)
    shapes = np.stack([_normalised(l_, ref) for l_ in landmarks]).reshape(len(landmarks), -1)
    raw = landmarks.reshape(len(landmarks), -1)
    feats = np.concatenate([shapes, 0.5 * (raw - raw.mean(0))], axis=1)  # expression, then pose
    chosen = [int(np.argmin(((feats - feats.mean(0)) ** 2).sum(1)))]
    dist = ((feats - feats[chosen[0]]) ** 2).sum(1)
    while len(chosen) < n:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((feats - feats[i]) ** 2).sum(1))
    return sorted(chosen)


def _from_video(path: str, shots: int, cfg: PrepareConfig) -> list[SourceFace]:
    tracker = FaceTracker(cfg.tracker)
    frames, lmks = [], []
    with VideoReader(path) as reader:
        step = max(1, reader.info.n_frames // 300)  # look at ~300 frames at most
        for i, frame in enumerate(reader):
            res = tracker.update(frame)
            if res.landmarks is not None and i % step == 0:
                frames.append(frame)
                lmks.append(res.landmarks)
    if not lmks:
        raise NoFaceError(f"no face found in the source video {path}")
    picked = diverse_indices(np.stack(lmks), shots)
    box = face_crop_box(np.stack([lmks[i] for i in picked]), cfg.margin, cfg.shift_up)
    return [SourceFace(frames[i], box, crop_image(frames[i], box, cfg.size), to_crop_coords(lmks[i], box, cfg.size),
                       f"{path}#{i}") for i in picked]


def load_sources(paths: list[str | Path | np.ndarray], shots: int = 8, cfg: PrepareConfig | None = None) -> list[SourceFace]:
    """Photos (one face each: the largest), arrays, or videos (``shots`` diverse frames each) → source faces."""
    cfg = cfg or PrepareConfig()
    detector = FaceDetector(max_side=1024)
    out: list[SourceFace] = []
    for src in paths:
        if isinstance(src, np.ndarray):
            image, name = src, "array"
        else:
            p = Path(src)
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                if not p.is_file():
                    raise InputError(f"source {p} does not exist")
                out += _from_video(str(p), shots, cfg)
                continue
            image, name = read_image(p), str(p)
        lmk = detect_landmarks(image, cfg.tracker.face_index, detector, source=name)
        box = face_crop_box(lmk, cfg.margin, cfg.shift_up)
        out.append(SourceFace(image, box, crop_image(image, box, cfg.size), to_crop_coords(lmk, box, cfg.size), name))
    if not out:
        raise InputError("no source image given")
    return out
