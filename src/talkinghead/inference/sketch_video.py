"""Landmark-sketch videos: track a face through a video and draw the conditioning image the generator sees."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talkinghead.config import PrepareConfig
from talkinghead.faces.crop import CropBox, crop_image, face_crop_box, to_crop_coords
from talkinghead.faces.sketch import draw_sketch
from talkinghead.faces.track import FaceTracker
from talkinghead.io.video import VideoWriter


@dataclass
class SketchStats:
    frames: int
    frames_no_face: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def write_sketch_video(
    frames: Iterable[np.ndarray],
    out: str | Path,
    fps: float,
    cfg: PrepareConfig | None = None,
    audio_from: str | Path | None = None,
    progress: bool = True,
    total: int | None = None,
    name: str | None = None,
) -> SketchStats:
    """Write ``crop | sketch | overlay`` panels (each ``cfg.size``²) for every frame.

    The crop box is fixed from the first frame with a face (streaming: memory stays bounded); frames without a
    face show the crop of that box and an empty sketch. ``name``: the video's, for the note when it shows several
    faces.
    """
    cfg = cfg or PrepareConfig()
    tracker = FaceTracker(cfg.tracker, fps=fps, name=name, option="--face-index")
    size = cfg.size
    box: CropBox | None = None
    n = lost = 0
    t0 = time.perf_counter()
    with VideoWriter(out, fps=fps, audio_from=audio_from) as writer:
        for frame, res in tqdm(tracker.track(frames), total=total, desc="sketch", unit="frame", disable=not progress):
            n += 1
            if res.landmarks is None:
                lost += 1
            elif box is None:
                box = face_crop_box(res.landmarks, cfg.margin, cfg.shift_up)
            if box is None:
                h, w = frame.shape[:2]
                box = CropBox(max(0.0, (w - min(h, w)) / 2), max(0.0, (h - min(h, w)) / 2), float(min(h, w)))
                box_is_fallback = True
            else:
                box_is_fallback = False
            crop = crop_image(frame, box, size)
            sketch = np.zeros_like(crop)
            if res.landmarks is not None:
                sketch = draw_sketch(to_crop_coords(res.landmarks, box, size), size)
            overlay = np.where(sketch.any(axis=2, keepdims=True), sketch, crop // 2)
            writer.write(np.concatenate([crop, sketch, overlay], axis=1))
            if box_is_fallback:
                box = None
    return SketchStats(n, lost, time.perf_counter() - t0)
