"""The paper's evaluation protocol on a prepared dataset: self- and cross-reenactment, with honest baselines.

Self-reenactment (per identity): T diverse source frames of one clip; driving frames from another clip of the same
person (or, with one clip, frames of the same clip disjoint from the sources: sources from its first half, driving
from its second half). With one clip, sources and driving frames share one camera and one crop box, so the driving
frames' own landmarks are the targets and the real frames, untouched, the ground truth (the paper's protocol). From
another clip, whose camera and crop differ, the driving landmarks are *aligned* onto the source (absolute mode: one
similarity fitted on the first driving frame, onto the most typical source frame, which is the first source for
every T, so T = 1 and T = 8 are scored on the very same targets); the ground truth is the real driving frame warped
by the same similarity. ``align="face"`` aligns one clip's frames that way too, as the protocol did before
2026-11-29: that moved a still background by however far the head had moved between the source and the first
driving frame, which no method shown only the target landmarks can know. Generated and real
are compared at 256² (the model's output is upscaled): SSIM, PSNR, CSIM (dlib face-recognition embedding of the
generated vs the real frame), NME (landmarks detected on the generated image vs the target landmarks), sharpness
ratio, and the fraction of generated frames in which a face is detected.

Cross-reenactment: identity A's sources driven by identity B's driving frames (relative mode, as the product
animates), no ground truth: CSIM to A's first source frame and NME to the adapted landmarks.

Frame sampling is deterministic (farthest-point source selection, evenly spaced driving frames); torch and numpy
are seeded. The baselines (:mod:`talkinghead.evaluation.baselines`) see the very same sources and targets.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from talkinghead.data.dataset import Clip, PreparedDataset
from talkinghead.data.episodes import resize_frames
from talkinghead.errors import InputError
from talkinghead.evaluation import metrics as M
from talkinghead.evaluation.baselines import get_baseline
from talkinghead.faces.crop import CropBox
from talkinghead.faces.measures import apply, similarity
from talkinghead.inference.animate import CROP_SIZE, Animator
from talkinghead.inference.compose import upscale
from talkinghead.inference.retarget import Retargeter
from talkinghead.inference.source import SourceFace, diverse_indices
from talkinghead.models.bundle import ModelBundle, load_model

MODES = ("ff", "ft")
SELF_METRICS = ("ssim", "psnr", "csim", "nme", "sharpness", "face_rate")
CROSS_METRICS = ("csim", "nme", "face_rate")
ALIGN = ("auto", "face")
"""How self-reenactment's driving frames are put in the source's frame (:meth:`Identity.self_targets`)."""
HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "csim": True, "nme": False, "sharpness": None, "face_rate": True}


@dataclass
class Identity:
    """One identity's evaluation material, all at 256² crop pixels."""

    name: str
    source_clip: str
    driving_clip: str
    source_pool: np.ndarray
    """Candidate source frames ``(P, 256, 256, 3) uint8`` and ``pool_landmarks`` ``(P, 68, 2)``."""
    pool_landmarks: np.ndarray
    pool_ids: list[int]
    driving: np.ndarray
    """Driving frames ``(F, 256, 256, 3) uint8`` and their landmarks ``(F, 68, 2)``."""
    driving_landmarks: np.ndarray
    driving_ids: list[int]

    def sources(self, shots: int) -> list[SourceFace]:
        """``shots`` diverse source faces (deterministic)."""
        pick = diverse_indices(self.pool_landmarks, shots)
        box = CropBox(0.0, 0.0, float(CROP_SIZE))
        return [SourceFace(self.source_pool[i], box, self.source_pool[i], self.pool_landmarks[i],
                           f"{self.source_clip}#{self.pool_ids[i]}") for i in pick]

    def self_targets(self, source: SourceFace, align: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """Self-reenactment targets for ``source`` ``(F, 68, 2)`` and the ground truth ``(F, 256, 256, 3)``.

        Driving frames of the source's own clip (one camera, one crop box) are taken as they are: their landmarks
        are the targets and the frames the truth. Those of another clip are aligned onto ``source``: one
        similarity, fitted on the first driving frame, maps the landmarks and warps the real frames alike.
        ``align``: ``"auto"`` (that choice), ``"face"`` (always align, the protocol before 2026-11-29)."""
        if align not in ALIGN:
            raise ValueError(f"align must be one of {ALIGN}, not {align!r}")
        if align == "auto" and self.driving_clip == self.source_clip:
            return self.driving_landmarks.astype(np.float32), self.driving.copy()
        mat = similarity(self.driving_landmarks[0], source.landmarks)
        targets = np.stack([apply(mat, p) for p in self.driving_landmarks])
        real = np.stack([cv2.warpAffine(f, mat, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE) for f in self.driving])
        return targets, real


@dataclass
class EvaluationResult:
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    """One row per (task, identity, shots, method): the per-identity mean of each metric over its frames."""
    out_dir: Path = Path(".")
    seconds: float = 0.0


def _valid(lmk: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(lmk.reshape(len(lmk), -1)).all(1))[0]


def _evenly(ids: np.ndarray, n: int) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return ids[np.unique(np.round(np.linspace(0, len(ids) - 1, n)).astype(int))]


def _read256(clip: Clip, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    frames, lmk = clip.read([int(i) for i in ids])
    return resize_frames(frames, lmk.astype(np.float32), CROP_SIZE)


def load_identities(dataset: PreparedDataset, max_sources: int, frames: int,
                    max_identities: int | None = None, pool: int = 64) -> list[Identity]:
    """Pick, deterministically, the source pool and driving frames of each identity (sorted by name)."""
    by_id: dict[str, list[Clip]] = defaultdict(list)
    for c in dataset.clips:
        by_id[c.identity].append(c)
    out: list[Identity] = []
    for name in sorted(by_id):
        if max_identities is not None and len(out) >= max_identities:
            break
        clips = sorted(by_id[name], key=lambda c: (-c.n_frames, c.key))
        src_clip = clips[0]
        src_valid = _valid(src_clip.arrays()["landmarks"])
        if len(clips) > 1:
            drv_clip = clips[1]
            drv_valid = _valid(drv_clip.arrays()["landmarks"])
        else:  # one clip: sources from its first half, driving frames from its second half
            drv_clip = src_clip
            half = len(src_valid) // 2
            src_valid, drv_valid = src_valid[:half], src_valid[half:]
        if len(src_valid) < 1 or len(drv_valid) < 1:
            continue
        pool_ids = _evenly(src_valid, max(pool, max_sources))
        src_frames, src_lmk = _read256(src_clip, pool_ids)
        drv_ids = _evenly(drv_valid, frames)
        drv_frames, drv_lmk = _read256(drv_clip, drv_ids)
        out.append(Identity(name, src_clip.key, drv_clip.key, src_frames, src_lmk, [int(i) for i in pool_ids],
                            drv_frames, drv_lmk, [int(i) for i in drv_ids]))
    return out


def generate(anim: Animator, targets: np.ndarray) -> np.ndarray:
    """Targets ``(N, 68, 2)`` in 256² crop pixels → generated faces ``(N, 256, 256, 3) uint8`` (upscaled)."""
    out = []
    for i in range(0, len(targets), 8):
        out += [upscale(f, CROP_SIZE) for f in anim.render(targets[i : i + 8])]
    return np.stack(out)


class _Embeddings:
    """Identity embeddings of real frames, computed once."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray | None] = {}

    def get(self, key: str, image: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray | None:
        if key not in self._cache:
            self._cache[key] = M.identity_embedding(image, landmarks)
        return self._cache[key]


def score_self(gen: np.ndarray, real: np.ndarray, targets: np.ndarray, real_emb: list[np.ndarray | None]) -> dict[str, float]:
    """Per-frame self-reenactment metrics averaged over frames (NaNs, i.e. frames without a face, skipped)."""
    rows = defaultdict(list)
    for g, r, t, e in zip(gen, real, targets, real_emb, strict=True):
        rows["ssim"].append(M.ssim(g, r))
        rows["psnr"].append(M.psnr(g, r))
        rows["sharpness"].append(M.sharpness_ratio(g, r))
        found = M.detect_face_landmarks(g)
        rows["face_rate"].append(float(found is not None))
        rows["nme"].append(float(M.landmark_nme(found, t)) if found is not None else np.nan)
        rows["csim"].append(M.csim(M.identity_embedding(g, t), e))
    return {k: _nanmean(v) for k, v in rows.items()}


def score_cross(gen: np.ndarray, targets: np.ndarray, source_emb: np.ndarray | None) -> dict[str, float]:
    rows = defaultdict(list)
    for g, t in zip(gen, targets, strict=True):
        found = M.detect_face_landmarks(g)
        rows["face_rate"].append(float(found is not None))
        rows["nme"].append(float(M.landmark_nme(found, t)) if found is not None else np.nan)
        rows["csim"].append(M.csim(M.identity_embedding(g, t), source_emb))
    return {k: _nanmean(v) for k, v in rows.items()}


def _nanmean(values: Sequence[float]) -> float:
    a = np.asarray(values, np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def file_hash(path: Path) -> str:
    """SHA-256 of a model file, or of the sorted files of a checkpoint folder."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def evaluate(model: str | Path | ModelBundle | None, data_root: str | Path, split: str = "val",
             shots: Sequence[int] = (1, 8), modes: Sequence[str] = MODES, baselines: Sequence[str] = ("static", "warp"),
             max_identities: int | None = None, frames_per_identity: int = 16, finetune_steps: int | None = None,
             out_dir: str | Path | None = None, seed: int = 0, progress: bool = True, device: str = "auto",
             cross: bool = True, align: str = "auto") -> EvaluationResult:
    """Run the protocol and write the report (see :func:`talkinghead.evaluation.report.write_report`) to ``out_dir``.

    ``model``: a model file / checkpoint / run folder, a loaded bundle, or None (the shipped model).
    ``finetune_steps``: steps of the ``ft`` mode (None: ``default_steps(T)``). ``align``: how self-reenactment's
    driving frames are put in the source's frame (:meth:`Identity.self_targets`). Returns all per-identity rows.
    """
    from talkinghead.evaluation.report import save_grid, write_report
    from talkinghead.training.finetune import default_steps

    if out_dir is None:
        raise InputError("evaluate needs an output folder (--out)")
    shots = sorted({int(s) for s in shots})
    if not shots or shots[0] < 1:
        raise InputError("--shots must be positive integers")
    modes = list(dict.fromkeys(modes))
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise InputError(f"unknown mode(s) {bad} (choose from ff, ft)")
    base_fns = {b: get_baseline(b) for b in dict.fromkeys(baselines)}
    if frames_per_identity < 1:
        raise InputError("--frames-per-identity must be positive")
    if align not in ALIGN:
        raise InputError(f"unknown --align {align!r} (choose from {', '.join(ALIGN)})")
    if finetune_steps is not None and finetune_steps < 1:
        raise InputError("--finetune-steps must be positive")
    if not split.strip():
        raise InputError("--split is empty (val, train, test, a manifest's own split name, or all)")
    out = Path(out_dir)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    np.random.seed(seed)

    bundle = model if isinstance(model, ModelBundle) else load_model(model)
    if bundle.kind == "person":
        raise InputError("evaluate needs a meta-learned model, not a person file")
    if model is None:
        from talkinghead.assets import default_model_path

        model_hash, model_name = file_hash(Path(default_model_path())), "shipped default"
    elif isinstance(model, ModelBundle):
        model_hash, model_name = None, "in-memory bundle"
    else:
        model_hash, model_name = file_hash(Path(model)), str(model)

    dataset = PreparedDataset(data_root, split)
    if not len(dataset):
        counts: dict[str, int] = {}
        for clip in PreparedDataset(data_root).clips:
            name = clip.record.get("split") or "train"
            counts[name] = counts.get(name, 0) + 1
        have = ", ".join(f"{k} ({n} clips)" for k, n in sorted(counts.items())) or "none"
        raise InputError(f"{data_root} has no clip in split {split!r}; its splits: {have} (--split all takes every clip)")
    people = load_identities(dataset, max(shots), frames_per_identity, max_identities)
    if not people:
        raise InputError(f"no usable identity in {data_root} ({split})")
    config = {"model": model_name, "model_sha256": model_hash, "model_resolution": bundle.config.resolution,
              "data": str(data_root), "split": split, "shots": shots, "modes": modes, "baselines": list(base_fns),
              "max_identities": max_identities, "frames_per_identity": frames_per_identity,
              "finetune_steps": {str(t): (finetune_steps or default_steps(t, bundle.config.arch)) for t in shots} if "ft" in modes else None,
              "seed": seed, "align": align, "identities": [p.name for p in people], "cross_reenactment": cross and len(people) > 1}
    result = EvaluationResult(config, out_dir=out)
    embeds = _Embeddings()
    n_cross = len(people) if config["cross_reenactment"] else 0
    bar = tqdm(total=len(people) * len(shots) + n_cross * len(shots), desc="evaluate", unit="run", disable=not progress)
    out.mkdir(parents=True, exist_ok=True)

    def row(task: str, person: Identity, t: int, method: str, scores: dict[str, float], **extra: Any) -> None:
        result.records.append({"task": task, "identity": person.name, "shots": t, "method": method, **scores, **extra})

    for t in shots:
        for k, person in enumerate(people):
            faces = person.sources(t)
            src = faces[0]
            # --- self-reenactment: the driver's own landmarks (from another clip: aligned onto the source, the real
            # frame warped alike)
            targets, real = person.self_targets(src, align)
            real_emb = [embeds.get(f"{person.name}/real/{t}/{i}", r, tg)
                        for i, (r, tg) in enumerate(zip(real, targets, strict=True))]
            shown: dict[str, np.ndarray] = {}
            for name, fn in base_fns.items():
                imgs = fn(faces, targets)
                shown[name] = imgs
                row("self", person, t, name, score_self(imgs, real, targets, real_emb))
            models: dict[str, Animator] = {}
            for mode in modes:
                anim = Animator(bundle, device=device)
                steps = (finetune_steps or default_steps(t, bundle.config.arch)) if mode == "ft" else 0
                t0 = time.perf_counter()
                anim.set_faces(faces, steps, progress=False)
                setup = time.perf_counter() - t0
                models[mode] = anim
                imgs = generate(anim, targets)
                shown[f"ours-{mode.upper()}"] = imgs
                row("self", person, t, f"ours-{mode}", score_self(imgs, real, targets, real_emb),
                    finetune_steps=steps, setup_seconds=round(setup, 3))
            save_grid(out / "grids" / f"{_safe(person.name)}_T{t}.png", src.crop, person.driving, real, shown)
            bar.update(1)
            # --- cross-reenactment: A's sources, the next identity's driving motion (relative mode)
            if n_cross:
                driver = people[(k + 1) % len(people)]
                ret = Retargeter(src.landmarks, relative=True)
                ret.set_reference(driver.driving_landmarks[0])
                ctargets = np.stack([ret(p) for p in driver.driving_landmarks])
                src_emb = embeds.get(f"{person.name}/source/{t}", src.crop, src.landmarks)
                for name, fn in base_fns.items():
                    row("cross", person, t, name, score_cross(fn(faces, ctargets), ctargets, src_emb),
                        driver=driver.name)
                for mode, anim in models.items():
                    row("cross", person, t, f"ours-{mode}", score_cross(generate(anim, ctargets), ctargets, src_emb),
                        driver=driver.name)
                bar.update(1)
    bar.close()
    result.seconds = time.perf_counter() - t_start
    config["seconds"] = round(result.seconds, 1)
    write_report(result, out)
    return result


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
