"""Files shipped with the package: the default model and a driving motion for the demo.

- ``default.safetensors``: meta-learned on the corpus described in MODEL_CARD.md (research use only).
- ``driving_grid.npz``: a 68-point landmark track (no frames, no audio) extracted with ``talkinghead`` from a
  GRID corpus clip (CC BY 4.0), used by ``make demo``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError


def asset_path(name: str) -> Path:
    path = Path(str(resources.files("talkinghead.assets") / name))
    if not path.is_file():
        raise TalkingHeadError(f"the packaged file {name} is missing from this installation ({path})")
    return path


def default_model_path() -> Path:
    return asset_path("default.safetensors")


def driving_motion() -> tuple[np.ndarray, float]:
    """The demo's driving landmark track ``(T, 68, 2) float32`` (frame pixels of the source clip) and its fps."""
    with np.load(asset_path("driving_grid.npz"), allow_pickle=False) as z:
        return z["landmarks"].astype(np.float32), float(z["fps"])
