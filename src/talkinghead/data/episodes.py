"""Meta-learning episodes from a prepared dataset: K source frames and one target frame of the same video.

Sampling is a pure function of ``(seed, sample number)``, so a resumed run draws exactly the batches the
interrupted one would have drawn, whatever the number of data-loading workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from talkinghead.data.dataset import Clip, PreparedDataset
from talkinghead.faces.landmarks import mirror_landmarks
from talkinghead.faces.sketch import draw_sketch, feature_region, visible_features


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(..., H, W, 3) uint8`` → ``(..., 3, H, W) float32`` in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)
    return t.movedim(-1, -3)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """``(..., 3, H, W)`` in [-1, 1] → ``(..., H, W, 3) uint8``."""
    t = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return t.movedim(-3, -1).cpu().numpy()


def resize_frames(frames: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(N, S0, S0, 3)`` and landmarks in their pixels → ``size``² and rescaled landmarks."""
    s0 = frames.shape[1]
    if s0 == size:
        return frames, landmarks
    interp = cv2.INTER_AREA if s0 > size else cv2.INTER_CUBIC
    out = np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])
    # pixel centres: x' + 0.5 = (x + 0.5) * size / s0
    return out, ((landmarks + 0.5) * (size / s0) - 0.5).astype(np.float32)


class EpisodeDataset(Dataset[dict[str, torch.Tensor]]):
    """``dataset[n]`` → one episode (the n-th sample of the run):

    - ``frames``, ``sketches``: ``(K, 3, S, S)`` in [-1, 1] — the K source frames and their landmark sketches
    - ``target``, ``target_sketch``: ``(3, S, S)`` — a different frame of the same video
    - ``video``: index of the video (the discriminator's column W_i)
    """

    def __init__(
        self, data: PreparedDataset, resolution: int, k: int, seed: int = 0, flip: bool = True, use_photos: bool = True
    ) -> None:
        self.clips: list[Clip] = [
            c for c in data.clips if c.n_frames >= 2 and (use_photos or c.record.get("kind") != "photos")
        ]
        if not self.clips:
            raise ValueError("no clip with at least two frames in the dataset")
        self.resolution = resolution
        self.k = k
        self.seed = seed
        self.flip = flip

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.clips]

    def __len__(self) -> int:  # sampling is by sample number; this is one pass over the videos
        return len(self.clips)

    def episode(self, video: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        clip = self.clips[video]
        n = clip.n_frames
        target = int(rng.integers(n))
        others = np.delete(np.arange(n), target)
        sources = rng.choice(others, size=self.k, replace=len(others) < self.k)
        frames, lmk = clip.read([*sources.tolist(), target])
        frames, lmk = resize_frames(frames, lmk, self.resolution)
        if self.flip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
            lmk = mirror_landmarks(lmk, self.resolution)
        sketches = np.stack([draw_sketch(p, self.resolution) for p in lmk])
        f, s = to_tensor(frames), to_tensor(sketches)
        return {"frames": f[:-1], "sketches": s[:-1], "target": f[-1], "target_sketch": s[-1],
                "video": torch.tensor(video)}

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, n])
        return self.episode(int(rng.integers(len(self.clips))), rng)


class SampleNumbers(Sampler[int]):
    """Sample numbers for one process: step s, slot b → ``(s * world + rank) * batch + b``, from ``start_step`` on."""

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world: int = 1, steps: int | None = None):
        self.batch_size, self.start_step, self.rank, self.world, self.steps = batch_size, start_step, rank, world, steps

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while self.steps is None or step < self.steps:
            base = (step * self.world + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("infinite sampler")
        return max(0, self.steps - self.start_step) * self.batch_size


MOUTH_CLOSED_QUANTILE = 0.4
MOUTH_OPEN_QUANTILE = 0.85
MOUTH_MIN_RANGE = 0.1
"""Open-mouth episodes: sources among a clip's frames up to the 40th percentile of mouth opening (inner-lip gap over
the inter-ocular distance), the target among those from the 85th; only clips where the two differ by 0.1 or more."""


def _mouth_pools(clip: Clip) -> tuple[np.ndarray, np.ndarray] | None:
    """A clip's (closed-mouth frames, open-mouth frames) for open-mouth episodes, or None when its mouth hardly
    opens."""
    from talkinghead.faces.measures import mouth_opening

    opening = mouth_opening(clip.arrays()["landmarks"])
    ok = np.isfinite(opening)
    if ok.sum() < 4:
        return None
    lo, hi = np.quantile(opening[ok], [MOUTH_CLOSED_QUANTILE, MOUTH_OPEN_QUANTILE])
    if hi - lo < MOUTH_MIN_RANGE:
        return None
    return np.where(ok & (opening <= lo))[0], np.where(ok & (opening >= hi))[0]


_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def jitter_colours(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(N, S, S, 3) uint8`` frames recoloured by one random transform, the same for all of them: the chroma
    rotated by any hue angle and scaled (saturation 0.5-1.3) about the luma axis, each channel's gain 0.85-1.15,
    a gamma of 0.8-1.25."""
    theta = rng.uniform(-np.pi, np.pi)
    sat = rng.uniform(0.5, 1.3)
    c, s = np.cos(theta) * sat, np.sin(theta) * sat
    chroma = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    mat = np.linalg.inv(_YIQ) @ chroma @ _YIQ
    gain = rng.uniform(0.85, 1.15, 3)
    gamma = rng.uniform(0.8, 1.25)
    x = np.clip(frames.astype(np.float32) / 255.0 @ mat.T.astype(np.float32), 0.0, 1.0)
    x = np.clip(x**gamma * gain.astype(np.float32), 0.0, 1.0)
    return (x * 255.0 + 0.5).astype(np.uint8)


class WarpEpisodeDataset(EpisodeDataset):
    """Episodes for the warp-and-refine generator: ``dataset[n]`` →

    - ``frames``, ``sketches``: ``(K, 3, S, S)`` in [-1, 1] — K source frames of one clip and their sketches
    - ``target``: ``(3, S, S)`` — another frame of the same person: with probability ``cross_clip``, and when the
      person has several clips, from a different clip (other lighting, framing, expression). With probability
      ``open_mouth`` (before that choice), and when the clip's mouth opens enough, an *open-mouth episode*: the
      sources are among the clip's most closed-mouth frames and the target among its most open ones, so the
      generator learns the mouth interior (teeth, the dark of the mouth) that a closed-mouth photo does not show.
      With probability ``colour_jitter`` all K + 1 frames are recoloured alike (:func:`jitter_colours`)
    - ``target_sketch``: ``(3, m, m)`` — the target's sketch at the motion resolution
    - ``prior``: ``(K, 2, m, m)`` — the thin-plate backward flow from the target's landmarks to each source's
      (with ``head_ring`` > 0, also from points over the top of the head: ``model.head_ring``)
    - ``region``: ``(1, m, m)`` — the target's eyes and mouth (:func:`~talkinghead.faces.sketch.feature_region`),
      where generated pixels are expected; elsewhere the loss ``gen_outside`` asks for the source's own pixels
    - ``visible`` (with ``visible=True``): ``(1, S, S)`` — the target's lips and open eyes, which the sources show
      (:func:`~talkinghead.faces.sketch.visible_features`; the loss ``gen_visible``)
    - ``video``: the source clip's index (the discriminator's column W_i, matched to the embedding of its frames)
    """

    def __init__(self, data: PreparedDataset, resolution: int, k: int, seed: int = 0, flip: bool = True,
                 use_photos: bool = True, motion_resolution: int = 64, cross_clip: float = 0.5,
                 open_mouth: float = 0.0, head_ring: float = 0.0, colour_jitter: float = 0.0,
                 visible: bool = False) -> None:
        super().__init__(data, resolution, k, seed, flip, use_photos)
        self.visible = visible
        self.colour_jitter = colour_jitter
        self.motion_resolution = motion_resolution
        self.cross_clip = cross_clip
        self.open_mouth = open_mouth
        self.head_ring = head_ring
        self.mouth_pools = [_mouth_pools(c) for c in self.clips] if open_mouth > 0 else []
        by_identity: dict[str, list[int]] = {}
        for i, c in enumerate(self.clips):
            by_identity.setdefault(c.identity, []).append(i)
        self.same_person = [by_identity[c.identity] for c in self.clips]

    def episode(self, video: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        from talkinghead.faces.warp import prior_grids

        clip = self.clips[video]
        others = [i for i in self.same_person[video] if i != video]
        pools = self.mouth_pools[video] if self.open_mouth > 0 and rng.random() < self.open_mouth else None
        if pools is not None:
            tclip, target, pool = clip, int(rng.choice(pools[1])), pools[0]
        elif others and rng.random() < self.cross_clip:
            tclip = self.clips[int(rng.choice(others))]
            target = int(rng.integers(tclip.n_frames))
            pool = np.arange(clip.n_frames)
        else:
            tclip = clip
            target = int(rng.integers(clip.n_frames))
            pool = np.delete(np.arange(clip.n_frames), target)
        sources = rng.choice(pool, size=self.k, replace=len(pool) < self.k)
        frames, lmk = clip.read(sources.tolist())
        tframe, tlmk = tclip.read([target])
        frames, lmk = resize_frames(np.concatenate([frames, tframe]), np.concatenate([lmk, tlmk]), self.resolution)
        if self.flip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
            lmk = mirror_landmarks(lmk, self.resolution)
        if self.colour_jitter > 0 and rng.random() < self.colour_jitter:
            frames = jitter_colours(frames, rng)
        m = self.motion_resolution
        sketches = np.stack([draw_sketch(p, self.resolution) for p in lmk[:-1]])
        target_sketch = draw_sketch(lmk[-1] * (m / self.resolution), m)
        region = feature_region(lmk[-1] * (m / self.resolution), m)
        prior = prior_grids(lmk[-1:], lmk[:-1], self.resolution, m, self.head_ring)[0]
        f = to_tensor(frames)
        out = {"frames": f[:-1], "sketches": to_tensor(sketches), "target": f[-1],
               "target_sketch": to_tensor(target_sketch), "prior": torch.from_numpy(prior),
               "region": torch.from_numpy(region)[None],
               "video": torch.tensor(video)}
        if self.visible:
            out["visible"] = torch.from_numpy(visible_features(lmk[-1], lmk[:-1], self.resolution))[None]
        return out
