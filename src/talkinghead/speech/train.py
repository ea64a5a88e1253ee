"""``talkinghead train-speech``: fit the audio-to-motion model on a prepared dataset's clips with sound, and
extract the idle-motion bank from its clips' landmarks and gaze.

Only the ``train`` split is used (validation identities stay unseen for ``benchmarks/lipsync.py``). Per clip the
targets are the jaw and lip displacements from the clip's neutral face in canonical units (:mod:`.shapes`).
Training draws random windows of ``window`` frames; the loss is the mean squared displacement error plus an L1
term on the inner-lip opening (what a viewer reads as "the mouth opens").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from talkinghead.data.audio import loudness
from talkinghead.data.dataset import PreparedDataset
from talkinghead.errors import InputError
from talkinghead.faces.measures import INNER_LIP_PAIRS, mouth_opening
from talkinghead.inference.gaze import gaze_track
from talkinghead.speech.bank import build_bank, clip_motion, save_bank, smooth_gaze
from talkinghead.speech.model import (
    RANGE_DB,
    AudioToMotion,
    SpeechModelConfig,
    combine,
    normalise_level,
    save_speech_model,
    warp_bands,
)
from talkinghead.speech.shapes import SPEECH_POINTS, speech_targets

_INNER = np.searchsorted(SPEECH_POINTS, INNER_LIP_PAIRS)  # the inner-lip pairs as indices into SPEECH_POINTS


@dataclass
class SpeechTrainConfig:
    steps: int = 500
    """On speakers left out of training, 500 steps beat 300, 1,000 and 2,000 (longer training memorises the
    training voices; see the README's speech section)."""
    batch_size: int = 32
    window: int = 40
    lr: float = 2e-3
    weight_decay: float = 1e-4
    opening_weight: float = 1.0
    corr_weight: float = 0.0
    """Weight of ``1 - Pearson correlation`` of the predicted and real inner-lip opening per training window
    (windows where the real mouth barely moves are left out): the shape of the opening over time, whatever its
    size, which is what lip sync is judged by."""
    balance: str = "clip"
    """How often a clip is drawn: ``clip`` ∝ √(its frames); ``identity`` ∝ √(its identity's frames), shared among
    the identity's clips in proportion to their length, so one speaker with many clips does not dominate."""
    freq_warp: float = 0.0
    """Augmentation: stretch the mel axis by a random factor in [1 - x, 1 + x] (another vocal tract length)."""
    noise_p: float = 0.0
    """Augmentation: share of windows given a random noise floor (15–40 dB below the loud end)."""
    speed: float = 0.0
    """Augmentation: play each window at a random speed in [1 - x, 1 + x] (features and targets resampled in time
    together): faster and slower speakers."""
    silence_p: float = 0.3
    """Share of training windows in which a span of the audio is replaced by silence and the mouth by the neutral
    (closed) one: pauses must close the mouth, also the digital silence of synthesised speech."""
    seed: int = 0
    threads: int = 1
    bank_clips: int = 40
    """Clips in the idle-motion bank (at most 2 per identity, the longest first)."""
    bank_max_frames: int = 375
    bank_min_frames: int = 50
    bank_max_travel: float = 0.8
    """Leave out clips whose head travels more than this (inter-ocular distances, peak to peak): pose-driving
    clips with large turns, which one photo cannot follow."""
    bank_max_turn: float = 0.35
    """... or turns more than this in the image plane (radians, peak to peak)."""
    bank_max_expression: float = 0.08
    """... or whose brows and eyes move more than this (95th percentile, inter-ocular units): grimaces."""
    bank_max_gaze: float = 0.2
    """A banked clip whose eyes look further to the side than this (95th percentile, eye widths) keeps its head
    motion and blinks but not its gaze: someone looking about on purpose (LivePortrait's gaze-driving clips reach
    0.26-0.33; the calm ones stay under 0.14), which a speaking portrait should not copy."""
    min_sync: float = 0.1
    """Leave out clips whose loudness and mouth opening correlate less than this at every lag within ±2 frames:
    their soundtrack is not their lips (dubbed, music, another take)."""
    holdout: list[str] = field(default_factory=lambda: ["grid_spk_*", "mead_*", "vr?_*"])
    """Identities (fnmatch patterns) of the train split kept out of training, as a second unseen test set."""
    model: SpeechModelConfig = field(default_factory=lambda: SpeechModelConfig(
        dilations=[1, 2, 4, 8], members=3, loud_mix=0.3, smooth=2.0))
    """The shipped recipe (chosen by identity cross-validation on the train split, ``benchmarks/speech_dev.py``)."""


@dataclass
class SpeechData:
    """Per clip: normalised features ``(N, 4, 80)``, targets ``(N, 37, 2)``, neutral ``(68, 2)``, key."""

    features: list[np.ndarray]
    targets: list[np.ndarray]
    neutrals: list[np.ndarray]
    keys: list[str]
    aligned: list[np.ndarray] = field(default_factory=list)
    sync: list[float] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Clips left out by the sync check."""

    @property
    def frames(self) -> int:
        return sum(len(t) for t in self.targets)


def sync_score(features: np.ndarray, aligned: np.ndarray, max_lag: int = 2) -> float:
    """The best correlation of loudness and mouth opening within ±``max_lag`` frames: near zero or negative
    when a clip's soundtrack is not what its lips say."""
    loud, opening = loudness(features).astype(np.float64), mouth_opening(aligned).astype(np.float64)
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        a = loud[max(0, -lag) : len(loud) - max(0, lag)]
        b = opening[max(0, lag) : len(opening) - max(0, -lag)]
        if len(a) > 2 and a.std() > 1e-9 and b.std() > 1e-9:
            best = max(best, float(np.corrcoef(a, b)[0, 1]))
    return best


def load_speech_data(root: str | Path, split: str, min_frames: int = 16, identities: list[str] | None = None,
                     exclude: list[str] | None = None, min_sync: float | None = None) -> SpeechData:
    """The clips of ``split`` that have sound, with their targets; ``identities`` / ``exclude``: fnmatch patterns
    of identities to keep / leave out; ``min_sync``: leave out clips whose :func:`sync_score` is lower.
    Raises :class:`InputError` (with what to do) for a dataset prepared before audio features existed or one
    without such clips."""
    ds = PreparedDataset(root, split=split)
    if identities is not None:
        ds.clips = [c for c in ds.clips if any(fnmatch(c.identity, p) for p in identities)]
    if exclude:
        ds.clips = [c for c in ds.clips if not any(fnmatch(c.identity, p) for p in exclude)]
    if int(ds.info.get("version", 1)) < 2 or any("audio" not in c.record for c in ds.clips):
        raise InputError(f"{root} was prepared before audio features existed (format version "
                         f"{ds.info.get('version', 1)}); run `talkinghead prepare SRC --out {root}` again to add "
                         "them (frames and landmarks are kept)")
    data = SpeechData([], [], [], [])
    for clip in ds.clips:
        if not clip.has_audio or clip.n_frames < min_frames:
            continue
        lmk = clip.arrays()["landmarks"]
        disp, aligned, neutral = speech_targets(lmk)
        feats = np.asarray(normalise_level(clip.audio()), np.float32)
        score = sync_score(feats, aligned)
        if min_sync is not None and score < min_sync:
            data.dropped.append(clip.key)
            continue
        data.features.append(feats)
        data.sync.append(score)
        data.targets.append(disp)
        data.neutrals.append(neutral)
        data.aligned.append(aligned)
        data.keys.append(clip.key)
    if not data.keys:
        raise InputError(f"{root} has no {split} clip with sound (clips without audio, silent or shorter than "
                         f"{min_frames} frames are left out)")
    return data


def opening_from_displacements(disp: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
    """Inner-lip gap (canonical units = over the inter-ocular distance) of neutral + displacements."""
    pts = neutral[..., None, :, :] + disp
    a, b = pts[..., _INNER[:, 0], :], pts[..., _INNER[:, 1], :]
    return (a - b).norm(dim=-1).mean(-1)


def resample_time(features: np.ndarray, targets: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Play a stretch of a clip ``rate`` times faster: features ``(N, S, M)`` and targets ``(N, ...)`` resampled
    at ``rate`` source frames per output frame (linear interpolation; instants within a frame keep their order)."""
    n, steps = features.shape[:2]
    m = max(1, int(np.floor((n - 1) / rate)) + 1)
    flat = features.reshape(n * steps, -1)
    tau = (np.arange(m * steps) + 0.5) / steps - 0.5  # each output instant's time, in output frames
    src = np.clip((tau * rate + 0.5) * steps - 0.5, 0, n * steps - 1)  # ... as a source instant index
    lo = np.minimum(src.astype(np.int64), n * steps - 2) if n * steps > 1 else np.zeros(len(src), np.int64)
    frac = (src - lo)[:, None].astype(np.float32)
    hi = np.minimum(lo + 1, n * steps - 1)
    f = (flat[lo] * (1 - frac) + flat[hi] * frac).reshape(m, steps, -1)
    tsrc = np.clip(np.arange(m) * rate, 0, n - 1)
    tlo = np.minimum(tsrc.astype(np.int64), max(n - 2, 0))
    thi = np.minimum(tlo + 1, n - 1)
    tfrac = (tsrc - tlo).reshape(-1, *[1] * (targets.ndim - 1)).astype(np.float32)
    t = targets[tlo] * (1 - tfrac) + targets[thi] * tfrac
    return f.astype(np.float32), t.astype(np.float32)


def _batch(data: SpeechData, rng: np.random.Generator, batch: int, window: int, weights: np.ndarray,
           silence_p: float = 0.0, freq_warp: float = 0.0,
           noise_p: float = 0.0, speed: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    feats, targets, neutrals = [], [], []
    for c in rng.choice(len(data.keys), size=batch, p=weights):
        n = len(data.targets[c])
        rate = float(rng.uniform(1 - speed, 1 + speed)) if speed > 0 else 1.0
        span = min(n, int(np.ceil((window - 1) * rate)) + 1)  # source frames that become ``window`` frames
        s = int(rng.integers(0, n - span + 1))
        if rate == 1.0:
            w = span
            f = data.features[c][s : s + w]
            t = data.targets[c][s : s + w]
        else:
            f, t = resample_time(data.features[c][s : s + span], data.targets[c][s : s + span], rate)
            f, t = f[:window], t[:window]
            w = len(t)
        if w < window:  # pad short clips with silence and repeat the last target
            f = np.concatenate([f, np.full((window - w, *f.shape[1:]), -RANGE_DB, np.float32)])
            t = np.concatenate([t, np.repeat(t[-1:], window - w, 0)])
        if freq_warp > 0:  # another vocal tract
            f = warp_bands(f, float(rng.uniform(1 - freq_warp, 1 + freq_warp)))
        if rng.random() < noise_p:  # a noisier room: a random floor, shaped like a smooth spectrum
            floor = -float(rng.uniform(15.0, 40.0)) + np.cumsum(rng.normal(0, 0.5, f.shape[-1]), dtype=np.float32)
            noise = floor + rng.normal(0, 2.0, f.shape).astype(np.float32)
            f = 10 * np.log10(10 ** (f / 10) + 10 ** (noise / 10))
        gain = rng.uniform(-6.0, 0.0)  # a quieter take of the same speech
        f = np.clip(f + gain + rng.normal(0, 1.0, f.shape), -RANGE_DB, 0.0)
        if rng.random() < 0.5:  # mask a band of frequencies (another voice, another microphone)
            lo = int(rng.integers(0, f.shape[-1] - 10))
            f[..., lo : lo + int(rng.integers(2, 11))] = -RANGE_DB
        if rng.random() < silence_p:  # a pause in the speech: the mouth closes
            n_sil = int(rng.integers(4, max(5, window // 3)))
            s0 = int(rng.integers(0, window - n_sil + 1))
            f[s0 : s0 + n_sil] = -RANGE_DB
            t = t.copy()
            t[s0 + 2 : s0 + n_sil - 2] = 0.0
        feats.append(f.astype(np.float32))
        targets.append(t)
        neutrals.append(data.neutrals[c][SPEECH_POINTS])
    return (torch.from_numpy(np.stack(feats)), torch.from_numpy(np.stack(targets)),
            torch.from_numpy(np.stack(neutrals)))


@dataclass
class SpeechTrainResult:
    model_path: Path
    bank_path: Path | None
    steps: int
    seconds: float
    clips: int
    frames: int
    final_loss: float
    parameters: int
    bank_clips: int = 0
    bank_frames: int = 0


def sampling_weights(keys: list[str], lengths: np.ndarray, balance: str = "clip") -> np.ndarray:
    """How often each clip is drawn (sums to 1); see :attr:`SpeechTrainConfig.balance`."""
    lengths = np.asarray(lengths, np.float64)
    if balance == "clip":
        w = np.sqrt(lengths)
    elif balance == "identity":
        ids = [k.split("/")[0] for k in keys]
        total: dict[str, float] = {}
        for i, n in zip(ids, lengths):
            total[i] = total.get(i, 0.0) + n
        w = np.array([np.sqrt(total[i]) * n / total[i] for i, n in zip(ids, lengths)])
    else:
        raise InputError(f"balance must be 'clip' or 'identity', not {balance!r}")
    return w / w.sum()


def _corr_loss(pred: torch.Tensor, target: torch.Tensor, min_std: float = 0.01) -> torch.Tensor:
    """Mean ``1 - r`` over the windows (rows) whose target varies by at least ``min_std``."""
    p = pred - pred.mean(1, keepdim=True)
    t = target - target.mean(1, keepdim=True)
    r = (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1) + 1e-8)
    keep = target.std(1) > min_std
    if not bool(keep.any()):
        return pred.new_zeros(())
    return (1.0 - r[keep]).mean()


def fit_loudness_motion(model: AudioToMotion, data: SpeechData) -> None:
    """Least-squares fits for :meth:`AudioToMotion.loudness_motion` on ``data``: the mouth opening (over the
    neutral face's) as ``slope * max(0, loudness - knee)`` (closed below the knee, so pauses close the mouth; the
    knee on a 1 dB grid), and the displacements per unit of opening."""
    loud = np.concatenate([loudness(f) for f in data.features]).astype(np.float64)
    opening = np.concatenate([mouth_opening(a) - mouth_opening(n)
                              for a, n in zip(data.aligned, data.neutrals)]).astype(np.float64)
    best = (np.inf, 0.0, 0.0)
    for knee in np.arange(-RANGE_DB, 0.0, 1.0):
        x = np.maximum(0.0, loud - knee)
        slope = float((x * opening).sum() / max(float((x * x).sum()), 1e-12))
        sse = float(((slope * x - opening) ** 2).sum())
        if sse < best[0]:
            best = (sse, slope, float(knee))
    _, slope, knee = best
    disp = np.concatenate(data.targets).reshape(len(opening), -1).astype(np.float64)
    direction = (opening[:, None] * disp).sum(0) / max(float((opening ** 2).sum()), 1e-12)
    model.loud_fit.copy_(torch.tensor([slope, -slope * knee], dtype=torch.float32))
    model.open_dir.copy_(torch.from_numpy(direction.astype(np.float32)))


def fit_speech_model(data: SpeechData, cfg: SpeechTrainConfig, progress: bool = True,
                     callback: Callable[[int, AudioToMotion], None] | None = None,
                     every: int = 250) -> tuple[AudioToMotion, float]:
    """Train a speech model on ``data`` (features already level-normalised); returns it and the final loss.
    ``callback(step, model)`` is called every ``every`` steps (e.g. to measure a dev set). A model of several
    members is trained one member after the other, each from its own seed (``seed``, ``seed + 1``, ...) and its own
    batches, and the members combined."""
    if cfg.model.members > 1:
        parts, losses = [], []
        for i in range(cfg.model.members):
            one = replace(cfg, seed=cfg.seed + i, model=replace(cfg.model, members=1))
            part, loss = fit_speech_model(data, one, progress, callback, every)
            parts.append(part)
            losses.append(loss)
        return combine(parts), float(np.mean(losses))
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = AudioToMotion(cfg.model)
    allf = np.concatenate([f.reshape(-1, f.shape[-1]) for f in data.features])
    model.mel_mean.copy_(torch.from_numpy(allf.mean(0)))
    model.mel_std.copy_(torch.from_numpy(allf.std(0) + 1e-3))
    allt = np.concatenate(data.targets).reshape(len(allf) // cfg.model.steps_per_frame, -1)
    model.out_scale.copy_(torch.from_numpy(allt.std(0) + 1e-4))
    if cfg.model.loud_mix > 0:
        fit_loudness_motion(model, data)
    lengths = np.array([len(t) for t in data.targets], np.float64)
    weights = sampling_weights(data.keys, lengths, cfg.balance)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    bar = tqdm(range(cfg.steps), desc="train-speech", unit="step", disable=not progress, dynamic_ncols=True)
    loss_avg = float("nan")
    model.train()
    for step in bar:
        feats, target, neutral = _batch(data, rng, cfg.batch_size, cfg.window, weights, cfg.silence_p,
                                        cfg.freq_warp, cfg.noise_p, cfg.speed)
        pred = model(feats)
        scale = model.out_scale.view(1, 1, -1, 2)
        mse = (((pred - target) / scale) ** 2).mean()
        open_pred = opening_from_displacements(pred, neutral)
        open_true = opening_from_displacements(target, neutral)
        loss = mse + cfg.opening_weight * (open_pred - open_true).abs().mean() / 0.05
        if cfg.corr_weight > 0:
            loss = loss + cfg.corr_weight * _corr_loss(open_pred, open_true)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_avg = loss.item() if step == 0 else 0.98 * loss_avg + 0.02 * loss.item()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss_avg:.3f}")
        if callback is not None and (step + 1) % every == 0 and step + 1 < cfg.steps:
            callback(step + 1, model.eval())
            model.train()
    bar.close()
    return model.eval(), loss_avg


def train_speech(data_root: str | Path, out: str | Path, cfg: SpeechTrainConfig | None = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> SpeechTrainResult:
    """Train on ``data_root``'s train split; write ``out/speech.safetensors`` and ``out/idle_motion.npz``."""
    cfg = cfg or SpeechTrainConfig()
    out = Path(out)
    t0 = time.perf_counter()
    data = load_speech_data(data_root, "train", exclude=cfg.holdout, min_sync=cfg.min_sync)
    log(f"train-speech: {len(data.keys)} clip(s) with sound, {data.frames} frames; left out {len(data.dropped)} "
        f"whose sound is not in sync with their lips (sync < {cfg.min_sync}) and the identities {cfg.holdout}")
    model, loss_avg = fit_speech_model(data, cfg, progress)
    seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    info: dict[str, Any] = {"data": str(data_root), "clips": data.keys, "frames": data.frames, "steps": cfg.steps,
                            "dropped_out_of_sync": data.dropped, "holdout": cfg.holdout,
                            "train_seconds": round(seconds, 1), "final_loss": round(loss_avg, 4),
                            "config": asdict(cfg)}
    model_path = save_speech_model(out / "speech.safetensors", model.eval(), info)
    bank_path, bank_n, bank_frames = _write_bank(data_root, out / "idle_motion.npz", cfg)
    (out / "train-speech.json").write_text(json.dumps({**info, "bank_clips": bank_n, "bank_frames": bank_frames},
                                                      indent=1))
    return SpeechTrainResult(model_path, bank_path, cfg.steps, seconds, len(data.keys), data.frames, loss_avg,
                             n_params, bank_n, bank_frames)


def _write_bank(root: str | Path, path: Path, cfg: SpeechTrainConfig) -> tuple[Path, int, int]:
    """Head motion, blinks and gaze of the train split's longest calm clips (at most 2 per identity), landmarks and
    gaze only."""
    ds = PreparedDataset(root, split="train")
    videos = sorted((c for c in ds.clips if float(c.record.get("fps") or 0) > 0 and c.n_frames >= cfg.bank_min_frames),
                    key=lambda c: -c.n_frames)
    per_identity: dict[str, int] = {}
    chosen = []
    for c in videos:
        if per_identity.get(c.identity, 0) >= 2 or len(chosen) >= cfg.bank_clips:
            continue
        lmk = c.arrays()["landmarks"][: cfg.bank_max_frames]
        head, upper = clip_motion(lmk)
        travel = float(np.ptp(head[:, :, 2], axis=0).max())
        turn = float(np.ptp(np.arctan2(head[:, 1, 0], head[:, 0, 0])))
        if travel > cfg.bank_max_travel or turn > cfg.bank_max_turn or \
                float(np.quantile(np.abs(upper), 0.95)) > cfg.bank_max_expression:
            continue
        per_identity[c.identity] = per_identity.get(c.identity, 0) + 1
        frames, _ = c.read(range(len(lmk)))
        gaze = gaze_track(frames, lmk)
        if float(np.percentile(np.abs(smooth_gaze(gaze)[:, 0]), 95)) > cfg.bank_max_gaze:
            gaze = np.zeros_like(gaze)
        chosen.append((c.key, lmk, float(c.record["fps"]), gaze))
    if not chosen:
        raise InputError(f"{root} has no training video of {cfg.bank_min_frames} frames or more for the "
                         "idle-motion bank")
    bank = build_bank(chosen)
    sources = "; ".join(sorted({str((c.record.get("extra") or {}).get("source_repo", "?")) for c in videos
                                if c.key in bank.names}))
    save_bank(path, bank, sources)
    return path, len(bank), len(bank.head)
