"""Temporal smoothing of landmark tracks.

- :class:`OneEuroFilter` (Casiez et al., CHI 2012): causal (usable while streaming a driving video) and adaptive:
  strong smoothing when the face is still (removes jitter), less lag when it moves fast.
- :func:`smooth_track`: offline, centred on each frame (a dataset's tracks, where the whole clip is known), and
  :func:`smooth_stream`, the same on a stream read a few frames ahead (a driving video file).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

T = TypeVar("T")


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


def _gaussian(sigma: float) -> tuple[int, np.ndarray]:
    """The radius ``ceil(3 sigma)`` (at least 1) and the normalised taps ``(2 radius + 1,)`` of a Gaussian."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return radius, taps / taps.sum()


def smooth_track(frame_ids: np.ndarray, landmarks: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase smoothing of a whole landmark track, for offline use (``prepare``): a Gaussian of ``sigma`` frames,
    centred on each frame, over each run of consecutive frames (``frame_ids``, ascending; a gap, where no face was
    found, starts a new run; the ends are extended with their own values). ``landmarks (N, 68, 2)`` → same shape.

    Unlike the causal :class:`OneEuroFilter` it neither lags nor damps fast motion: with the corpus tracked by
    One-Euro at 1 Hz, a validation identity's stored mouth shapes trailed the frames, and the evaluation's warp
    baseline scored SSIM 0.840 at T = 1; with the same clips tracked per frame and smoothed here at σ = 1 frame,
    0.856 (``docs/eval``)."""
    lmk = np.asarray(landmarks, dtype=np.float64)
    ids = np.asarray(frame_ids)
    if sigma <= 0 or len(lmk) < 2:
        return lmk.astype(np.float32)
    radius, taps = _gaussian(sigma)
    out = np.empty_like(lmk)
    cuts = np.flatnonzero(np.diff(ids) != 1) + 1
    for run in np.split(np.arange(len(lmk)), cuts):
        seg = lmk[run]
        padded = np.concatenate([np.repeat(seg[:1], radius, 0), seg, np.repeat(seg[-1:], radius, 0)])
        out[run] = sum(w * padded[k : k + len(seg)] for k, w in enumerate(taps))
    return out.astype(np.float32)


def smooth_found(track: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`smooth_track` on a track ``(T, 68, 2)`` whose frames without a face are NaN (they stay NaN and end a
    run); returns a new array."""
    out = np.array(track, dtype=np.float32)
    found = np.flatnonzero(np.isfinite(out).all(axis=(1, 2)))
    if sigma > 0 and len(found):
        out[found] = smooth_track(found, out[found], sigma)
    return out


def smooth_stream(items: Iterable[tuple[np.ndarray | None, T]], sigma: float) -> Iterator[tuple[np.ndarray | None, T]]:
    """:func:`smooth_track` on a stream of ``(landmarks or None, payload)`` items (a driving video being tracked):
    each item comes out ``ceil(3 sigma)`` items later with its landmarks smoothed, centred; None (no face) ends a
    run and passes through. The same values as :func:`smooth_track` on the whole track."""
    if sigma <= 0:
        yield from items
        return
    radius, taps = _gaussian(sigma)
    run: list[np.ndarray] = []  # this run's landmarks so far (the last 2 radius + 1 are enough)
    start = 0  # run position of run[0]
    pending: list[tuple[int, T]] = []  # (run position, payload) not yet given out

    def value(pos: int, known: int) -> np.ndarray:
        idx = np.clip(np.arange(pos - radius, pos + radius + 1), 0, known - 1) - start
        return np.tensordot(taps, np.stack([run[i] for i in idx]), axes=1).astype(np.float32)

    for lmk, payload in items:
        if lmk is None:
            known = start + len(run)
            for pos, p in pending:
                yield value(pos, known), p
            pending, run, start = [], [], 0
            yield None, payload
            continue
        run.append(np.asarray(lmk, dtype=np.float64))
        pending.append((start + len(run) - 1, payload))
        known = start + len(run)
        while pending and pending[0][0] + radius < known:
            pos, p = pending.pop(0)
            yield value(pos, known), p
        if len(run) > 2 * radius + 1:  # older landmarks are no longer needed
            drop = len(run) - (2 * radius + 1)
            del run[:drop]
            start += drop
    known = start + len(run)
    for pos, p in pending:
        yield value(pos, known), p
