"""Temporal smoothing of landmark tracks: the One-Euro filter (Casiez et al., CHI 2012).

Causal (usable while streaming a driving video) and adaptive: strong smoothing when the face is still
(removes jitter), little lag when it moves fast (keeps speech motion).
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filter a stream of arrays (e.g. ``(68, 2)`` landmarks) sampled at ``fps``.

    ``min_cutoff`` (Hz): cut-off when still; lower is smoother. ``beta``: how fast the cut-off rises with speed.
    ``scale``: divides values before the speed test, so ``beta`` does not depend on face size in pixels.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 5.0, d_cutoff: float = 1.0) -> None:
        self.dt = 1.0 / fps
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._dx is None:
            self._x = x.copy()
            self._dx = np.zeros_like(x)
            return x.astype(np.float32)
        dx = (x - self._x) / self.dt / max(scale, 1e-6)
        a_d = _alpha(self.d_cutoff, self.dt)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = _alpha(cutoff, self.dt)
        self._x = a * x + (1.0 - a) * self._x
        return self._x.astype(np.float32)
