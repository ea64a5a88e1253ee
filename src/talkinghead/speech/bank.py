"""A bank of real head motion and blinks, extracted from prepared clips as landmarks only (no frames, no audio).

Per frame of each banked clip: the head's in-plane motion as a similarity in canonical coordinates (relative to
the clip's median pose) and the displacement of the brows, nose and eyes from the clip's neutral face (blinks,
brow raises, and what out-of-plane turns do to them). :func:`idle_motion` strings clips together (cross-faded) to
cover any length at any frame rate, so a speaking portrait's head never freezes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.inference.retarget import STABLE, similarity
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

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray, float]:
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        return self.head[a:b], self.upper[a:b], float(self.fps[i])

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


def build_bank(clips: list[tuple[str, np.ndarray, float]]) -> MotionBank:
    """Bank from ``(name, landmarks (N, 68, 2), fps)`` per clip."""
    heads, uppers, starts, fps, names = [], [], [0], [], []
    for name, lmks, rate in clips:
        h, u = clip_motion(lmks)
        heads.append(h)
        uppers.append(u)
        starts.append(starts[-1] + len(h))
        fps.append(rate)
        names.append(name)
    return MotionBank(np.concatenate(heads), np.concatenate(uppers), np.asarray(starts, np.int64),
                      np.asarray(fps, np.float32), names)


def save_bank(path: str | Path, bank: MotionBank, sources: str = "") -> Path:
    from talkinghead.io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, head=bank.head.astype(np.float16), upper=bank.upper.astype(np.float16),
                                starts=bank.starts, fps=bank.fps, names=np.asarray(bank.names), sources=sources)
    return path


def load_bank(path: str | Path | None = None) -> MotionBank:
    if path is None:
        from talkinghead.assets import asset_path

        path = asset_path("idle_motion.npz")
    with np.load(path, allow_pickle=False) as z:
        return MotionBank(z["head"].astype(np.float32), z["upper"].astype(np.float32), z["starts"],
                          z["fps"].astype(np.float32), [str(n) for n in z["names"]])


def _resample(head: np.ndarray, upper: np.ndarray, src_fps: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    n = max(2, int(np.floor((len(head) - 1) / src_fps * fps)) + 1)
    pos = np.arange(n) * (src_fps / fps)
    i0 = np.minimum(np.floor(pos).astype(int), len(head) - 1)
    i1 = np.minimum(i0 + 1, len(head) - 1)
    w = (pos - i0)[:, None, None]
    return (1 - w) * head[i0] + w * head[i1], (1 - w) * upper[i0] + w * upper[i1]


def idle_motion(bank: MotionBank, n_frames: int, fps: float, seed: int = 0,
                amount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(head (n, 2, 3), upper (n, 31, 2))`` for ``n_frames`` at ``fps``: bank clips in a random order
    (``seed``), each resampled to ``fps``, cross-faded into the next. ``amount`` scales the motion (0 = frozen)."""
    rng = np.random.default_rng(seed)
    fade = max(1, int(round(CROSSFADE_S * fps)))
    head = np.zeros((0, 2, 3), np.float64)
    upper = np.zeros((0, len(UPPER_POINTS), 2), np.float64)
    order: list[int] = []
    while len(head) < n_frames:
        if not order:
            order = [int(i) for i in rng.permutation(len(bank))]
        h, u, rate = bank.clip(order.pop())
        h, u = _resample(h, u, rate, fps)
        if len(head) == 0:
            head, upper = h, u
            continue
        k = min(fade, len(h) // 2, len(head) // 2)
        w = np.linspace(0, 1, k + 2)[1:-1, None, None]
        head[-k:] = (1 - w) * head[-k:] + w * h[:k]
        upper[-k:] = (1 - w) * upper[-k:] + w * u[:k]
        head = np.concatenate([head, h[k:]])
        upper = np.concatenate([upper, u[k:]])
    head, upper = head[:n_frames], upper[:n_frames]
    head = identity_head(n_frames) + amount * (head - identity_head(n_frames))
    return head.astype(np.float32), (amount * upper).astype(np.float32)


def identity_head(n: int) -> np.ndarray:
    return np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32), (n, 1, 1))


