"""A bank of real head motion, blinks and gaze, extracted from prepared clips as landmarks and gaze only (no
frames, no audio).

Per frame of each banked clip: the head's in-plane motion as a similarity in canonical coordinates (relative to
the clip's median pose), the displacement of the brows, nose and eyes from the clip's neutral face (blinks,
brow raises, and what out-of-plane turns do to them), and where the eyes look relative to where they usually
look (:func:`~talkinghead.inference.gaze.gaze_track`, in eye widths; zeros for a clip whose gaze could not be
read). :func:`idle_motion` strings clips together (cross-faded) to cover any length at any frame rate, so a
speaking portrait's head never freezes and its eyes do not stare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.faces.measures import similarity
from talkinghead.inference.retarget import STABLE
from talkinghead.speech.shapes import UPPER_POINTS, align_clip, neutral_face, to_canonical_matrix

CROSSFADE_S = 0.4


@dataclass
class MotionBank:
    head: np.ndarray
    """``(F, 2, 3) float32``: canonical → canonical similarity per frame (identity = the clip's median pose)."""
    upper: np.ndarray
    """``(F, 31, 2) float32``: brow/nose/eye displacements from the clip's neutral face, canonical units."""
    starts: np.ndarray
    """``(C + 1,)`` frame offsets of each clip in the arrays."""
    fps: np.ndarray
    """``(C,)`` each clip's frame rate."""
    names: list[str]
    gaze: np.ndarray | None = None
    """``(F, 2) float32``: the gaze ``(u, v)`` relative to the clip's usual one, eye widths (None: all zeros, as
    in banks made before gaze was banked)."""

    def __post_init__(self) -> None:
        if self.gaze is None:
            self.gaze = np.zeros((len(self.head), 2), np.float32)

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(head, upper, gaze, fps)`` of clip ``i``."""
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        assert self.gaze is not None
        return self.head[a:b], self.upper[a:b], self.gaze[a:b], float(self.fps[i])

    def __len__(self) -> int:
        return len(self.names)


def clip_motion(lmks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(head (N, 2, 3), upper (N, 31, 2))`` of one clip's landmarks ``(N, 68, 2)`` (see :class:`MotionBank`)."""
    lmks = np.asarray(lmks, np.float64)
    ref = np.median(lmks, axis=0)
    canon = to_canonical_matrix(ref)
    canon3 = np.vstack([canon, [0, 0, 1]])
    canon_inv = np.linalg.inv(canon3)
    heads = []
    for f in lmks:
        m = np.vstack([similarity(ref[STABLE], f[STABLE]), [0, 0, 1]])  # median pose → this frame, pixels
        heads.append((canon3 @ m @ canon_inv)[:2])
    aligned = align_clip(lmks)
    neutral = neutral_face(aligned)
    upper = aligned[:, UPPER_POINTS] - neutral[UPPER_POINTS]
    return np.asarray(heads, np.float32), upper.astype(np.float32)


GAZE_MEDIAN = 5
"""Frames of the median filter over a banked clip's gaze: the detector's frame-to-frame noise goes, a glance
(a step from one fixation to the next) stays."""


def smooth_gaze(gaze: np.ndarray, size: int = GAZE_MEDIAN) -> np.ndarray:
    from scipy.ndimage import median_filter

    if len(gaze) < 2:
        return np.asarray(gaze, np.float32)
    return median_filter(np.asarray(gaze, np.float32), size=(min(size, len(gaze)), 1), mode="nearest")


def build_bank(clips: list[tuple[str, np.ndarray, float]] | list[tuple[str, np.ndarray, float, np.ndarray]]
               ) -> MotionBank:
    """Bank from ``(name, landmarks (N, 68, 2), fps)`` or ``(name, landmarks, fps, gaze (N, 2))`` per clip
    (``gaze``: :func:`~talkinghead.inference.gaze.gaze_track`, smoothed here; without it, zeros)."""
    heads, uppers, gazes, starts, fps, names = [], [], [], [0], [], []
    for name, lmks, rate, *rest in clips:
        h, u = clip_motion(lmks)
        heads.append(h)
        uppers.append(u)
        gaze = smooth_gaze(rest[0]) if rest else np.zeros((len(h), 2), np.float32)
        if gaze.shape != (len(h), 2):
            raise ValueError(f"{name}: gaze {gaze.shape} for {len(h)} frames of landmarks")
        gazes.append(gaze)
        starts.append(starts[-1] + len(h))
        fps.append(rate)
        names.append(name)
    return MotionBank(np.concatenate(heads), np.concatenate(uppers), np.asarray(starts, np.int64),
                      np.asarray(fps, np.float32), names, np.concatenate(gazes).astype(np.float32))


def save_bank(path: str | Path, bank: MotionBank, sources: str = "") -> Path:
    from talkinghead.io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, head=bank.head.astype(np.float16), upper=bank.upper.astype(np.float16),
                                gaze=np.asarray(bank.gaze, np.float16), starts=bank.starts, fps=bank.fps,
                                names=np.asarray(bank.names), sources=sources)
    return path


def load_bank(path: str | Path | None = None) -> MotionBank:
    if path is None:
        from talkinghead.assets import asset_path

        path = asset_path("idle_motion.npz")
    with np.load(path, allow_pickle=False) as z:
        return MotionBank(z["head"].astype(np.float32), z["upper"].astype(np.float32), z["starts"],
                          z["fps"].astype(np.float32), [str(n) for n in z["names"]],
                          z["gaze"].astype(np.float32) if "gaze" in z.files else None)


def _resample(arrays: tuple[np.ndarray, ...], src_fps: float, fps: float) -> list[np.ndarray]:
    """Each of ``arrays`` (one clip's per-frame motion, frames first) at ``fps`` instead of ``src_fps``."""
    m = len(arrays[0])
    n = max(2, int(np.floor((m - 1) / src_fps * fps)) + 1)
    pos = np.arange(n) * (src_fps / fps)
    i0 = np.minimum(np.floor(pos).astype(int), m - 1)
    i1 = np.minimum(i0 + 1, m - 1)
    out = []
    for a in arrays:
        w = (pos - i0).reshape(-1, *[1] * (a.ndim - 1))
        out.append((1 - w) * a[i0] + w * a[i1])
    return out


def _string(clips: list[tuple[tuple[np.ndarray, ...], float]], rng: np.random.Generator, n_frames: int,
            fps: float) -> list[np.ndarray]:
    """``clips`` (each: its per-frame motion arrays and its frame rate) in a random order, each resampled to ``fps``
    and cross-faded into the next, until ``n_frames`` are covered."""
    fade = max(1, int(round(CROSSFADE_S * fps)))
    parts: list[np.ndarray] = []
    order: list[int] = []
    while not parts or len(parts[0]) < n_frames:
        if not order:
            order = [int(i) for i in rng.permutation(len(clips))]
        motion, rate = clips[order.pop()]
        new = _resample(motion, rate, fps)
        if not parts:
            parts = new
            continue
        k = min(fade, len(new[0]) // 2, len(parts[0]) // 2)
        w = np.linspace(0, 1, k + 2)[1:-1]
        for j, (old, nxt) in enumerate(zip(parts, new)):
            wj = w.reshape(-1, *[1] * (old.ndim - 1))
            old[-k:] = (1 - wj) * old[-k:] + wj * nxt[:k]
            parts[j] = np.concatenate([old, nxt[k:]])
    return [p[:n_frames] for p in parts]


def idle_motion(bank: MotionBank, n_frames: int, fps: float, seed: int = 0,
                amount: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(head (n, 2, 3), upper (n, 31, 2), gaze (n, 2))`` for ``n_frames`` at ``fps``: bank clips in a random
    order (``seed``), each resampled to ``fps``, cross-faded into the next. The gaze is strung the same way but on
    its own, from the clips whose gaze was read (others keep their eyes still), so the eyes glance whichever clips
    the head's motion comes from. ``amount`` scales the motion (0 = frozen head, no blinks, a fixed gaze)."""
    clips = [bank.clip(i) for i in range(len(bank))]
    head, upper = _string([((h, u), rate) for h, u, _, rate in clips], np.random.default_rng(seed), n_frames, fps)
    looking = [((g,), rate) for _, _, g, rate in clips if g.any()]
    gaze = _string(looking, np.random.default_rng([seed, 1]), n_frames, fps)[0] if looking else \
        np.zeros((n_frames, 2))
    head = identity_head(n_frames) + amount * (head - identity_head(n_frames))
    return head.astype(np.float32), (amount * upper).astype(np.float32), (amount * gaze).astype(np.float32)


def identity_head(n: int) -> np.ndarray:
    return np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32), (n, 1, 1))


