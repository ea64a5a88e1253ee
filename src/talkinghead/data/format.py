"""The prepared-dataset format: one uncompressed zip per clip, grouped by identity, plus JSONL indexes.

```
DATASET/
  dataset.json                         format version and the preparation config
  clips/<identity>/<clip>.zip          frames/000000.jpg ...  (256² JPEG crops, stored without recompression)
                                       landmarks.npy (N, 68, 2) float32, crop pixels
                                       boxes.npy     (N, 3)     float32, crop box (x0, y0, side) in source pixels
                                       frame_ids.npy (N,)       int32, frame number in the source video
                                       audio.npy     (N, 4, 80) float16, log-mel dB at 4 instants per frame
                                                                (videos with sound only; see data/audio.py)
                                       meta.json     identity, source, fps, counts ...
  skipped/<identity>/<clip>.json       why a clip was skipped (so a resumed run does not retry it)
  index/shard-<i>-of-<n>.jsonl         one line per clip this shard finished (kept and skipped)
  manifest.jsonl                       every kept clip, merged from index/ after each run
  report-<i>-of-<n>.json / .md         what the run did
```
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "talkinghead-clips"
FORMAT_VERSION = 2
"""2: clips of videos carry ``audio.npy`` (N, 4, 80) float16 log-mel features aligned to the frames, and every
clip's meta an ``audio`` entry (``present``, else ``reason``); version-1 datasets are upgraded by ``prepare``."""


def clip_path(root: Path, key: str) -> Path:
    identity, name = key.split("/", 1)
    return root / "clips" / identity / f"{name}.zip"


def skip_path(root: Path, key: str) -> Path:
    identity, name = key.split("/", 1)
    return root / "skipped" / identity / f"{name}.json"


def frame_member(i: int) -> str:
    return f"frames/{i:06d}.jpg"


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_clip_tracks(zf: zipfile.ZipFile, landmarks: np.ndarray, boxes: np.ndarray, frame_ids: np.ndarray,
                      meta: dict[str, Any], audio: np.ndarray | None = None) -> None:
    """Write a clip zip's members other than its frames, in the layout above."""
    if audio is not None:
        zf.writestr("audio.npy", npy_bytes(audio.astype(np.float16)))
    zf.writestr("landmarks.npy", npy_bytes(np.asarray(landmarks, np.float32).reshape(-1, 68, 2)))
    zf.writestr("boxes.npy", npy_bytes(np.asarray(boxes, np.float32).reshape(-1, 3)))
    zf.writestr("frame_ids.npy", npy_bytes(np.asarray(frame_ids, np.int32)))
    zf.writestr("meta.json", json.dumps(meta, indent=1, sort_keys=True))


def npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with path.open() as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def jsonl_text(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
