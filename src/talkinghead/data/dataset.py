"""Random access to a prepared dataset: any K frames of any clip, with landmarks and crop boxes."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkinghead.data.format import FORMAT, clip_path, frame_member, npy_load, read_jsonl
from talkinghead.errors import InputError


@dataclass
class Clip:
    """One prepared clip. Arrays are read lazily; frames are decoded only when asked for."""

    root: Path
    record: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.record["key"])

    @property
    def identity(self) -> str:
        return str(self.record["identity"])

    @property
    def n_frames(self) -> int:
        return int(self.record["n_frames"])

    @property
    def path(self) -> Path:
        return clip_path(self.root, self.key)

    def _zip(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.path)

    def arrays(self) -> dict[str, np.ndarray]:
        """``landmarks`` (N, 68, 2) crop pixels, ``boxes`` (N, 3) source pixels, ``frame_ids`` (N,)."""
        with self._zip() as zf:
            return {k: npy_load(zf.read(f"{k}.npy")) for k in ("landmarks", "boxes", "frame_ids")}

    @property
    def has_audio(self) -> bool:
        """Whether the clip carries audio features (``audio.npy``); False for photos, silent and old clips."""
        audio = self.record.get("audio") or {}
        return bool(audio.get("present")) and not audio.get("silent", False)

    def audio(self) -> np.ndarray:
        """Audio features ``(N, 4, 80) float32`` (log-mel dB, row i = frame i; see :mod:`talkinghead.data.audio`)."""
        if "audio" not in self.record:
            raise InputError(f"clip {self.key} was prepared before audio features existed (dataset format 1); "
                             f"run `talkinghead prepare` again with --out {self.root} to add them")
        if not self.record["audio"].get("present"):
            raise InputError(f"clip {self.key} has no audio ({self.record['audio'].get('reason', 'none')})")
        with self._zip() as zf:
            return npy_load(zf.read("audio.npy")).astype(np.float32)

    def read(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(K, S, S, 3) uint8`` RGB and their landmarks ``(K, 68, 2) float32`` (crop pixels)."""
        with self._zip() as zf:
            lmk = npy_load(zf.read("landmarks.npy"))
            frames = []
            for i in indices:
                if not 0 <= i < self.n_frames:
                    raise IndexError(f"frame {i} out of range for clip {self.key} ({self.n_frames} frames)")
                buf = np.frombuffer(zf.read(frame_member(int(i))), np.uint8)
                frames.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
        return np.stack(frames), lmk[np.asarray(indices, dtype=int)]


class PreparedDataset:
    """The clips of a dataset written by :func:`talkinghead.data.prepare_dataset`, optionally one split."""

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        self.root = Path(root)
        info = self.root / "dataset.json"
        manifest = self.root / "manifest.jsonl"
        if not info.is_file() or not manifest.is_file():
            raise InputError(f"{root} is not a prepared dataset (run: talkinghead prepare SRC --out {root})")
        self.info = json.loads(info.read_text())
        if self.info.get("format") != FORMAT:
            raise InputError(f"{root}: unknown dataset format {self.info.get('format')!r}")
        records = read_jsonl(manifest)
        if split is not None and split != "all":
            records = [r for r in records if (r.get("split") or "train") == split]
        self.clips = [Clip(self.root, r) for r in records]
        self.size = int(self.info["size"])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> Clip:
        return self.clips[i]

    def identities(self) -> list[str]:
        return sorted({c.identity for c in self.clips})

    def total_frames(self) -> int:
        return sum(c.n_frames for c in self.clips)
