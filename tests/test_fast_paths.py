"""The per-frame fast paths give what the plain computations give: the thin-plate grid with its precomputed
basis."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.assets import driving_motion
from talkinghead.faces.warp import border_anchors, identity_grid, tps_eval, tps_fit, tps_grid


def _plain_tps_grid(target: np.ndarray, source: np.ndarray, frame_size: int, grid_size: int) -> np.ndarray:
    """The grid as :func:`tps_grid` computed it before its basis was precomputed: ``pts + tps_eval``."""
    scale = 2.0 / frame_size
    anchors = border_anchors(frame_size)
    ctrl = (np.concatenate([target, anchors]) + 0.5) * scale - 1.0
    vals = (np.concatenate([source, anchors]) + 0.5) * scale - 1.0
    coef = tps_fit(ctrl, vals - ctrl, 1e-3)
    pts = identity_grid(grid_size).reshape(-1, 2).astype(np.float64)
    return (pts + tps_eval(coef, ctrl, pts)).reshape(grid_size, grid_size, 2).astype(np.float32)


@pytest.mark.parametrize(("frame_size", "grid_size"), [(256, 64), (32, 16), (64, 64)])
def test_tps_grid_equals_the_plain_evaluation(frame_size: int, grid_size: int) -> None:
    track, _ = driving_motion()  # real faces moving: the packaged GRID landmark track (256² crop pixels)
    rng = np.random.default_rng(frame_size + grid_size)
    src = track[0] * (frame_size / 256)
    for i in range(5, len(track), 29):
        tgt = (track[i] + rng.normal(0.0, 1.0, (68, 2))) * (frame_size / 256)
        fast = tps_grid(tgt, src, frame_size, grid_size)
        assert fast.dtype == np.float32 and fast.shape == (grid_size, grid_size, 2)
        # both are float32 evaluations of the same spline, each within ~5e-5 of a float64 one (1e-4: 0.013 px at 256²)
        assert np.abs(fast - _plain_tps_grid(tgt, src, frame_size, grid_size)).max() < 1e-4
    assert np.array_equal(tps_grid(np.full((68, 2), np.nan), src, frame_size, grid_size), identity_grid(grid_size))
    grid = tps_grid(src, src, frame_size, grid_size)  # no motion: the identity, and a fresh array each call
    assert np.abs(grid - identity_grid(grid_size)).max() < 1e-3
    grid[:] = 0.0
    assert np.abs(tps_grid(src, src, frame_size, grid_size) - identity_grid(grid_size)).max() < 1e-3
