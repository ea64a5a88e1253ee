"""Sample grids: rows of (sketch | real | generated) images, written as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talkinghead.data.episodes import to_image
from talkinghead.io.images import write_image


def sample_grid(rows: list[tuple[torch.Tensor, ...]], gap: int = 2) -> np.ndarray:
    """Each row is a tuple of ``(3, S, S)`` tensors in [-1, 1]; returns one ``uint8`` RGB image."""
    images = [[to_image(t) for t in row] for row in rows]
    s = images[0][0].shape[0]
    n_cols = max(len(r) for r in images)
    grid = np.full((len(images) * (s + gap) - gap, n_cols * (s + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(images):
        for j, img in enumerate(row):
            grid[i * (s + gap) : i * (s + gap) + s, j * (s + gap) : j * (s + gap) + s] = img
    return grid


def save_grid(path: Path, rows: list[tuple[torch.Tensor, ...]]) -> Path:
    return write_image(path, sample_grid(rows))
