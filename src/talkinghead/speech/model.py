"""The audio-to-motion network: log-mel features → jaw and lip displacements from the neutral face.

A small temporal convolution network. Input: ``(B, T, 4, 80)`` features (4 instants per video frame); a strided
convolution brings them to the frame rate, dilated residual convolutions see a window of ±``context`` frames
(±0.36 s at 25 fps by default), and a 1×1 convolution gives, per frame, 37 displacements ``(dx, dy)`` in
canonical units (one unit = the inter-ocular distance; see :mod:`.shapes`). Every output frame depends on the
audio window around it (and, with ``cmn``, on the utterance's mean spectrum), so the network runs on any length.
A model may hold several such networks (``members``, trained independently from different seeds): its output is
their mean, which varies less from one unseen voice to the next than any one of them. With ``loud_mix``, part of
the output is a loudness-driven jaw fitted on the training clips (see :attr:`SpeechModelConfig.loud_mix`).

Files: one ``.safetensors`` with the weights (float32) and the config and training summary as JSON metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from talkinghead.data.audio import FLOOR_DB, N_MELS, STEPS_PER_FRAME
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.io.atomic import atomic_path
from talkinghead.speech.shapes import SPEECH_POINTS

REF_FLOOR_DB = -45.0
"""Per-utterance level reference is the loud end of the utterance, but never below this (so silence stays quiet)."""
RANGE_DB = 60.0
"""Features are clipped this far below the utterance's loud end: about where real recordings' background noise
lies, so the digital silence of synthesised speech looks like the pauses the model learnt from."""


@dataclass
class SpeechModelConfig:
    width: int = 128
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 1])
    kernel: int = 3
    n_mels: int = N_MELS
    steps_per_frame: int = STEPS_PER_FRAME
    n_points: int = len(SPEECH_POINTS)
    cmn: bool = True
    """Also feed the features with the utterance's mean spectrum removed (per band): the microphone, the room and
    the speaker's timbre matter less."""
    dropout: float = 0.1
    members: int = 1
    """Independently trained networks whose outputs are averaged (an ensemble)."""
    loud_mix: float = 0.0
    """Share of the output taken from a loudness-driven jaw (:meth:`AudioToMotion.loudness_motion`: the mouth
    opened in proportion to the frame's loudness along the average opening direction, both fitted by least squares
    on the training clips), the rest from the networks: a simple predictor that transfers to any voice, which the
    networks' shape and timing refine."""
    smooth: float = 1.0
    """Gaussian smoothing of the predicted motion over time (standard deviation in frames; 0 = none), applied by
    :meth:`AudioToMotion.predict`: the training targets are smoothed landmark tracks too."""
    band_warps: list[float] = field(default_factory=lambda: [0.9, 0.95, 1.0, 1.05, 1.1])
    """At inference (:meth:`AudioToMotion.predict`), the output is averaged over copies of the features with the
    mel axis stretched by these factors (:func:`warp_bands`: the formants of a shorter or longer vocal tract), so
    the motion depends less on where one voice's formants happen to lie. ``[1.0]``: one pass. Chosen on dev
    speakers (``benchmarks/speech_dev.py --warps``); files made before the option get it too."""

    @property
    def context(self) -> int:
        """Frames of audio on each side that one output frame sees."""
        return 1 + sum(d * (self.kernel - 1) // 2 for d in self.dilations)


def normalise_level(features: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Log-mel dB re full scale → dB re the utterance's loud end (its 99th-percentile band peak, floored at
    :data:`REF_FLOOR_DB`), clipped to [-60, 0]: the recording's gain no longer matters, silence stays at the bottom."""
    if isinstance(features, torch.Tensor):
        peaks = features.amax(-1).flatten(1)
        ref = torch.quantile(peaks.float(), 0.99, dim=1).clamp(min=REF_FLOOR_DB)
        return (features - ref.view(-1, *[1] * (features.dim() - 1))).clamp(-RANGE_DB, 0.0)
    ref = max(float(np.quantile(np.asarray(features).max(-1), 0.99)), REF_FLOOR_DB)
    return np.clip(np.asarray(features, np.float32) - ref, -RANGE_DB, 0.0)


def warp_bands(f: np.ndarray, factor: float) -> np.ndarray:
    """Stretch the mel axis (last) by ``factor`` (> 1: formants move up), linear interpolation, edges held."""
    m = f.shape[-1]
    src = np.clip(np.arange(m) / factor, 0, m - 1)
    lo = np.minimum(src.astype(np.int64), m - 2)
    frac = (src - lo).astype(np.float32)
    return f[..., lo] * (1 - frac) + f[..., lo + 1] * frac


class _Block(nn.Module):
    def __init__(self, width: int, kernel: int, dilation: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.conv = nn.Conv1d(width, width, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.drop(self.act(self.conv(self.act(x)))))


class _Net(nn.Module):
    """One member: normalised features ``(B, C, T*S)`` → ``(B, 2P, T)``."""

    def __init__(self, cfg: SpeechModelConfig) -> None:
        super().__init__()
        self.inp = nn.Conv1d(cfg.n_mels * (2 if cfg.cmn else 1), cfg.width, 3, padding=1)
        self.down = nn.Conv1d(cfg.width, cfg.width, cfg.steps_per_frame, stride=cfg.steps_per_frame)
        self.blocks = nn.Sequential(*[_Block(cfg.width, cfg.kernel, d, cfg.dropout) for d in cfg.dilations])
        self.out = nn.Conv1d(cfg.width, cfg.n_points * 2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.down(torch.nn.functional.gelu(self.inp(x)))))


class AudioToMotion(nn.Module):
    def __init__(self, cfg: SpeechModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SpeechModelConfig()
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("mel_std", torch.ones(cfg.n_mels))
        self.register_buffer("out_scale", torch.ones(cfg.n_points * 2))
        self.members = nn.ModuleList([_Net(cfg) for _ in range(max(1, cfg.members))])
        if cfg.loud_mix > 0:
            self.register_buffer("loud_fit", torch.zeros(2))  # opening = max(0, slope * loudness dB + intercept)
            self.register_buffer("open_dir", torch.zeros(cfg.n_points * 2))  # displacement per unit of opening

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, S, M)`` log-mel dB (already level-normalised) → ``(B, T, 37, 2)`` canonical displacements
        (the members' mean)."""
        b, t, s, m = features.shape
        x = (features - self.mel_mean) / self.mel_std
        x = x.reshape(b, t * s, m)
        if self.cfg.cmn:
            x = torch.cat([x, x - x.mean(1, keepdim=True)], -1)
        x = x.transpose(1, 2)
        y = torch.stack([net(x) for net in self.members]).mean(0)  # (B, 2P, T)
        y = y.transpose(1, 2) * self.out_scale
        return y.reshape(b, t, self.cfg.n_points, 2)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """One utterance's features ``(T, S, M)`` (dB re full scale, as :mod:`talkinghead.data.audio` computes
        them) → displacements ``(T, 37, 2) float32``, canonical units."""
        level = np.asarray(normalise_level(features), np.float32)
        warps = list(self.cfg.band_warps) or [1.0]
        x = np.stack([level if w == 1.0 else warp_bands(level, w) for w in warps])
        self.eval()
        outs = self(torch.from_numpy(x)).numpy()  # (W, T, P, 2): the warped copies as one batch
        if self.cfg.loud_mix > 0:
            mix = self.cfg.loud_mix
            outs = (1 - mix) * outs + mix * np.stack([self.loudness_motion(v) for v in x])
        out = outs.mean(0)
        if self.cfg.smooth > 0 and len(out) > 1:
            from scipy.ndimage import gaussian_filter1d

            out = gaussian_filter1d(out, self.cfg.smooth, axis=0, mode="nearest")
        return out.astype(np.float32)

    def loudness_motion(self, features: np.ndarray) -> np.ndarray:
        """Level-normalised features ``(T, S, M)`` → the loudness-driven displacements ``(T, P, 2)``."""
        from talkinghead.data.audio import loudness

        slope, intercept = self.loud_fit.tolist()
        opening = np.maximum(0.0, intercept + slope * loudness(features))
        return (opening[:, None] * self.open_dir.numpy()[None]).reshape(len(opening), self.cfg.n_points, 2)


def combine(models: list[AudioToMotion]) -> AudioToMotion:
    """One model whose output is the mean of ``models``' (single-member models of one config trained on the same
    data: the same input normalisation and output scale)."""
    first = models[0]
    cfg = SpeechModelConfig(**{**asdict(first.cfg), "members": sum(len(m.members) for m in models)})
    out = AudioToMotion(cfg)
    for name in ("mel_mean", "mel_std", "out_scale") + (("loud_fit", "open_dir") if cfg.loud_mix > 0 else ()):
        getattr(out, name).copy_(getattr(first, name))
    for dst, src in zip(out.members, [net for m in models for net in m.members]):
        dst.load_state_dict(src.state_dict())
    return out.eval()


def save_speech_model(path: str | Path, model: AudioToMotion, info: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "talkinghead-speech", "version": "1", "config": json.dumps(asdict(model.cfg)),
            "info": json.dumps(info or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_speech_model(path: str | Path | None = None) -> AudioToMotion:
    """A speech model file (default: the shipped one)."""
    from safetensors import safe_open

    if path is None:
        from talkinghead.assets import asset_path

        path = asset_path("speech.safetensors")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such speech model file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{path}: not a readable speech model ({exc.__class__.__name__})") from None
    if meta.get("format") != "talkinghead-speech":
        raise InputError(f"{path}: not a talkinghead speech model")
    cfg = SpeechModelConfig(**{"cmn": False, **json.loads(meta["config"])})  # files made before the option
    model = AudioToMotion(cfg)
    if not any(k.startswith("members.") for k in tensors):  # a file made before ensembles: one network
        tensors = {k if k in ("mel_mean", "mel_std", "out_scale") else f"members.0.{k}": v for k, v in tensors.items()}
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise TalkingHeadError(f"{path}: weights do not match the config ({exc})") from None
    model.info = json.loads(meta.get("info", "{}"))  # type: ignore[assignment]
    return model.eval()


def silence_features(n_frames: int) -> np.ndarray:
    return np.full((n_frames, STEPS_PER_FRAME, N_MELS), FLOOR_DB, np.float32)
