"""iBUG ``.pts`` landmark files (a 3-line header, then one ``x y`` per line, 1-based pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.errors import InputError


def read_pts(path: str | Path) -> np.ndarray:
    """Points as ``(N, 2) float32``, converted to 0-based pixel coordinates."""
    lines = Path(path).read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "{") + 1
        end = next(i for i, line in enumerate(lines) if line.strip() == "}")
        pts = np.array([[float(v) for v in line.split()[:2]] for line in lines[start:end] if line.strip()], np.float32)
    except (StopIteration, ValueError, IndexError):
        raise InputError(f"{path} is not a .pts landmark file") from None
    return pts - 1.0
