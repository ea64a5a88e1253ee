"""Audio for speech-driven animation: decode any FFmpeg-readable audio, log-mel features aligned to video frames.

Decoding and resampling to 16 kHz mono go through FFmpeg (PyAV); the mel spectrogram is torch's STFT times
librosa's Slaney mel filterbank (stored as ``assets/mel_filters.npz``: importing librosa, for scipy.signal and
numba, took 2.4-2.8 s of every ``speak``; a test checks both against ``librosa.feature.melspectrogram``). Features are
computed once at 100 Hz (hop 10 ms, window 25 ms, 80 mel bands from 55 Hz to 7.6 kHz, power in dB re full scale)
and then sampled at ``STEPS_PER_FRAME`` instants per video frame, centred on the frame's time stamp, by linear
interpolation: so any frame rate gets ``(n_frames, STEPS_PER_FRAME, N_MELS)`` features, and feature row ``i``
always belongs to video frame ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from talkinghead.errors import InputError

SAMPLE_RATE = 16000
HOP = 160
"""10 ms: the mel frames' spacing before they are resampled to the video's frame times."""
WINDOW = 400
N_FFT = 512
N_MELS = 80
F_MIN, F_MAX = 55.0, 7600.0
STEPS_PER_FRAME = 4
FLOOR_DB = -100.0
"""Mel power of digital silence (and of instants outside the recording), dB re full scale."""
FEATURES = "logmel80-16k-v1"
SILENT_PEAK_DB = -60.0
"""A recording whose loudest 10 ms (mean mel power) stays below this is treated as silent."""


@dataclass
class Audio:
    samples: np.ndarray
    """Mono float32 in [-1, 1] at :data:`SAMPLE_RATE`."""
    start: float
    """Time of the first sample in the file's timeline (seconds); video frames are aligned against it."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def audio_duration(path: str | Path) -> float:
    """The first audio stream's duration from the container (0.0 when it does not say), without decoding."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise InputError(f"{path}: no audio stream (not an audio file?)")
            s = c.streams.audio[0]
            if s.duration and s.time_base:
                return float(s.duration * s.time_base)
            return float(c.duration / av.time_base) if c.duration else 0.0
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable audio file ({exc.__class__.__name__})") from None


def read_audio(path: str | Path, max_seconds: float | None = None) -> Audio:
    """Decode the first audio stream of ``path`` to 16 kHz mono float32.

    Raises :class:`InputError` (one line) for a missing or empty file, a file FFmpeg cannot read, a file without
    an audio stream, or (with ``max_seconds``) audio longer than that.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    if p.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if max_seconds is not None:
        declared = audio_duration(p)
        if declared > max_seconds + 0.05:
            raise InputError(f"{path}: the audio is {declared:.1f} s long; the limit is {max_seconds:g} s")
    chunks: list[np.ndarray] = []
    start: float | None = None
    n = 0
    try:
        with av.open(str(p)) as c:
            if not c.streams.audio:
                raise InputError(f"{path}: no audio stream (not an audio file?)")
            stream = c.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in c.decode(stream):
                if start is None:
                    start = float(frame.time) if frame.time is not None else 0.0
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    n += chunks[-1].size
                if max_seconds is not None and n > (max_seconds + 0.05) * SAMPLE_RATE:
                    raise InputError(f"{path}: the audio is longer than the limit of {max_seconds:g} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable audio file ({exc.__class__.__name__})") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise InputError(f"{path}: the audio stream holds no sound (no decodable samples)")
    if samples.size < WINDOW:
        raise InputError(f"{path}: the audio is {samples.size / SAMPLE_RATE * 1000:.0f} ms long; at least "
                         f"{WINDOW / SAMPLE_RATE * 1000:.0f} ms is needed")
    return Audio(np.clip(samples, -1.0, 1.0), start or 0.0)


MEL_FILTERS = Path(__file__).resolve().parents[1] / "assets" / "mel_filters.npz"


def librosa_mel_filters() -> np.ndarray:
    """``librosa.filters.mel`` for these features' settings (Slaney scale and norm): ``(N_MELS, N_FFT // 2 + 1)``.
    What ``assets/mel_filters.npz`` holds (``python -c "from talkinghead.data.audio import save_mel_filters as s;
    s()"`` rewrites it)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX)


def save_mel_filters(path: Path = MEL_FILTERS) -> None:
    np.savez(path, weights=librosa_mel_filters(), sample_rate=SAMPLE_RATE, n_fft=N_FFT, f_min=F_MIN, f_max=F_MAX)


@cache
def mel_filters() -> np.ndarray:
    """The stored mel filterbank ``(N_MELS, N_FFT // 2 + 1) float64`` (:func:`librosa_mel_filters`)."""
    with np.load(MEL_FILTERS) as f:
        weights = f["weights"].astype(np.float64)
        settings = (int(f["sample_rate"]), int(f["n_fft"]), float(f["f_min"]), float(f["f_max"]))
    if weights.shape != (N_MELS, N_FFT // 2 + 1) or settings != (SAMPLE_RATE, N_FFT, F_MIN, F_MAX):
        raise RuntimeError(f"{MEL_FILTERS} does not match the features' settings; rewrite it (save_mel_filters)")
    return weights


def logmel(samples: np.ndarray) -> np.ndarray:
    """Mel power in dB re full scale, ``(n, N_MELS) float32``; row ``k`` is centred at ``k * HOP / SAMPLE_RATE`` s.
    As ``librosa.feature.melspectrogram`` (power 2, centred frames padded with zeros, a periodic Hann window of
    ``WINDOW`` samples centred in ``N_FFT``) and ``librosa.power_to_db`` (ref 1, floor :data:`FLOOR_DB`), to
    within 1e-4 dB."""
    import torch

    lead = (N_FFT - WINDOW) // 2
    window = torch.zeros(N_FFT, dtype=torch.float64)
    window[lead : lead + WINDOW] = torch.hann_window(WINDOW, periodic=True, dtype=torch.float64)
    x = torch.from_numpy(np.asarray(samples, np.float64).reshape(-1))
    spec = torch.stft(x, N_FFT, HOP, N_FFT, window=window, center=True, pad_mode="constant", return_complex=True)
    mel = mel_filters() @ (spec.abs() ** 2).numpy()
    db = 10.0 * np.log10(np.maximum(mel, 10 ** (FLOOR_DB / 10)))
    return np.ascontiguousarray(db.T, dtype=np.float32)


def sample_features(mel_db: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Mel rows at arbitrary times (seconds), linearly interpolated; instants outside the recording are silence."""
    pos = np.asarray(times, np.float64) * (SAMPLE_RATE / HOP)
    shape = pos.shape
    pos = pos.reshape(-1)
    n = len(mel_db)
    i0 = np.floor(pos).astype(np.int64)
    w = (pos - i0)[:, None].astype(np.float32)
    padded = np.concatenate([mel_db, np.full((1, mel_db.shape[1]), FLOOR_DB, np.float32)])
    a = padded[np.where((i0 >= 0) & (i0 < n), i0, n)]
    b = padded[np.where((i0 + 1 >= 0) & (i0 + 1 < n), i0 + 1, n)]
    return ((1 - w) * a + w * b).reshape(*shape, mel_db.shape[1]).astype(np.float32)


def frame_times(frame_ids: np.ndarray, fps: float, offset: float = 0.0) -> np.ndarray:
    """The ``STEPS_PER_FRAME`` feature instants of each video frame (seconds), centred on the frame's time."""
    sub = (np.arange(STEPS_PER_FRAME) - (STEPS_PER_FRAME - 1) / 2) / STEPS_PER_FRAME
    return offset + (np.asarray(frame_ids, np.float64)[:, None] + sub[None]) / fps


def features_for_frames(audio: Audio, frame_ids: np.ndarray, fps: float, video_start: float = 0.0) -> np.ndarray:
    """``(len(frame_ids), STEPS_PER_FRAME, N_MELS) float32`` features of video frames ``frame_ids`` at ``fps``.

    ``video_start``: the time of video frame 0 in the file's timeline (the audio's start is in ``audio``).
    """
    return sample_features(logmel(audio.samples), frame_times(frame_ids, fps, video_start - audio.start))


def frames_for_audio(audio: Audio, fps: float) -> np.ndarray:
    """Features for a video of ``fps`` that lasts as long as ``audio`` (one row per output frame)."""
    n = max(1, int(round(audio.seconds * fps)))
    return sample_features(logmel(audio.samples), frame_times(np.arange(n), fps))


def peak_db(features: np.ndarray) -> float:
    """The loudest instant's mean mel power (dB): how :func:`is_silent` judges a recording."""
    if features.size == 0:
        return FLOOR_DB
    power = 10 ** (features.reshape(-1, features.shape[-1]) / 10)
    return float(10 * np.log10(power.mean(-1).max() + 1e-12))


def is_silent(features: np.ndarray) -> bool:
    return peak_db(features) < SILENT_PEAK_DB


def loudness(features: np.ndarray) -> np.ndarray:
    """Per-frame loudness (dB): mean mel power over bands and the frame's steps. ``(N, S, M)`` → ``(N,)``."""
    power = 10 ** (np.asarray(features, np.float64) / 10)
    return (10 * np.log10(power.mean(axis=(-1, -2)) + 1e-12)).astype(np.float32)


def video_audio_features(path: str | Path, frame_ids: np.ndarray, fps: float) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Audio features for frames ``frame_ids`` of a video file, and what to record about them in the clip's meta.

    Returns ``(None, {"present": False, "reason": ...})`` for a video without audio (or with unreadable audio).
    """
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                return None, {"present": False, "reason": "no audio stream"}
            vs = c.streams.video[0]
            video_start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    except (av.error.FFmpegError, OSError) as exc:
        return None, {"present": False, "reason": f"unreadable ({exc.__class__.__name__})"}
    try:
        audio = read_audio(path)
    except InputError as exc:
        return None, {"present": False, "reason": str(exc).split(": ", 1)[-1]}
    feats = features_for_frames(audio, frame_ids, fps, video_start)
    info = {"present": True, "features": FEATURES, "sample_rate": SAMPLE_RATE, "n_mels": N_MELS,
            "steps_per_frame": STEPS_PER_FRAME, "seconds": round(audio.seconds, 3),
            "peak_db": round(peak_db(feats), 2), "silent": is_silent(feats)}
    return feats, info
