"""Speech → a landmark track for one source face, and the whole ``speak`` pipeline.

Per output frame, in the source's canonical coordinates (:mod:`.shapes`): the source's own landmarks, plus the
audio model's jaw and lip displacements, plus the idle-motion bank's brow/eye displacements (blinks); then the
bank's head motion (a similarity); then back to the source crop's pixels. Every displacement is in units of the
inter-ocular distance, so the motion has the same size relative to any face. The bank's gaze goes with it (how
far the irises slide, in eye widths, as ``animate`` slides them after a driver's). The track drives
:meth:`Animator.animate <talkinghead.inference.animate.Animator.animate>` like any landmark track, so the output
is watermarked and signed exactly as ``animate``'s.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from talkinghead.data.audio import (
    SILENT_PEAK_DB,
    Audio,
    frames_for_audio,
    peak_db,
    read_audio,
)
from talkinghead.errors import InputError
from talkinghead.faces.measures import apply
from talkinghead.inference.gaze import iris_shift
from talkinghead.inference.mouth import example_mouth
from talkinghead.speech.bank import MotionBank, idle_motion, load_bank
from talkinghead.speech.model import AudioToMotion, load_speech_model
from talkinghead.speech.phonemes import Phoneme, apply_closures, opening_direction, rest_mouth
from talkinghead.speech.shapes import SPEECH_POINTS, UPPER_POINTS, invert, to_canonical_matrix

if TYPE_CHECKING:
    from talkinghead.inference.animate import AnimateResult, Animator

DEFAULT_FPS = 25.0
DEFAULT_MAX_SECONDS = 60.0


@dataclass
class SpeechTrack:
    landmarks: np.ndarray
    """``(T, 68, 2) float32`` in the source crop's pixels."""
    fps: float
    displacements: np.ndarray
    """``(T, 37, 2)`` the audio model's jaw and lip displacements (canonical units)."""
    gaze: np.ndarray | None = None
    """``(T, 2)`` how far the irises slide along and across the eyes (eye widths; :func:`~talkinghead.inference.
    gaze.iris_shift` of the bank's gaze)."""


class SpeechDriver:
    """Audio features → landmark tracks. ``head_motion``: scale of the bank's head motion, blinks and glances (0
    freezes them); ``articulation``: scale of the mouth motion; ``seed`` picks the bank clips; ``lip_closures``:
    where the phonemes are known (text spoken by the TTS engine), close the lips on /p b m/ (:mod:`.phonemes`);
    ``rest_mouth``: a photo showing its mouth open (a smile with teeth) has it closed to rest first, so the speech
    opens and closes it (:func:`~talkinghead.speech.phonemes.rest_mouth`)."""

    def __init__(self, model: str | Path | AudioToMotion | None = None, bank: str | Path | MotionBank | None = None,
                 head_motion: float = 1.0, articulation: float = 1.0, seed: int = 0,
                 lip_closures: bool = True, rest_mouth: bool = True) -> None:
        self.model = model if isinstance(model, AudioToMotion) else load_speech_model(model)
        self.bank = bank if isinstance(bank, MotionBank) else load_bank(bank)
        self.head_motion = head_motion
        self.articulation = articulation
        self.seed = seed
        self.lip_closures = lip_closures
        self.rest_mouth = rest_mouth

    def track(self, source: np.ndarray, features: np.ndarray, fps: float,
              phonemes: list[Phoneme] | None = None) -> SpeechTrack:
        """``source``: the source face's landmarks ``(68, 2)`` (crop pixels); ``features``: ``(T, 4, 80)``
        (:func:`talkinghead.data.audio.frames_for_audio`); ``phonemes``: what is said when, if known."""
        to_canon = to_canonical_matrix(source)
        from_canon = invert(to_canon)
        canon = apply(to_canon, source)
        open_dir = opening_direction(self.model, canon)
        if self.rest_mouth:
            canon = rest_mouth(canon, open_dir)
        disp = self.model.predict(features) * self.articulation
        if phonemes and self.lip_closures:
            disp = apply_closures(disp, canon, open_dir, phonemes, fps)
        n = len(disp)
        head, upper, gaze = idle_motion(self.bank, n, fps, seed=self.seed, amount=self.head_motion)
        shapes = np.repeat(canon[None], n, 0).astype(np.float64)
        shapes[:, SPEECH_POINTS] += disp
        shapes[:, UPPER_POINTS] += upper
        shapes = np.einsum("tij,tpj->tpi", head[:, :, :2], shapes) + head[:, None, :, 2]
        out = apply(from_canon, shapes.reshape(-1, 2)).reshape(n, 68, 2)
        return SpeechTrack(out.astype(np.float32), fps, disp, iris_shift(gaze).astype(np.float32))


@dataclass
class SpeakResult:
    path: Path
    frames: int
    fps: float
    audio_seconds: float
    seconds: float
    """Compute time of the request: TTS, audio features, motion, rendering and encoding (model loading and the
    source photo's face detection excluded)."""
    tts_seconds: float
    render: AnimateResult | None = None

    @property
    def seconds_per_output_second(self) -> float:
        return self.seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0


@dataclass
class Speech:
    """Checked speech, ready to drive: the decoded audio, the file for the output's sound, the features."""

    audio: Audio
    path: Path
    features: np.ndarray
    fps: float
    seconds: float
    """Compute time so far (TTS and features)."""
    tts_seconds: float = 0.0
    phonemes: list[Phoneme] | None = None
    """What is said when, for synthesised text (``None`` for an audio file)."""


def load_speech(audio: str | Path | None, text: str | None, workdir: Path, language: str = "en",
                voice: str | None = None, words_per_minute: int = 160, fps: float = DEFAULT_FPS,
                max_seconds: float = DEFAULT_MAX_SECONDS) -> Speech:
    """The speech to say, checked, with its features at ``fps``. ``workdir`` receives the synthesised WAV.

    Raises :class:`InputError` for: both or neither of audio and text, empty text, an unknown voice or language,
    an unreadable or non-audio file, audio longer than ``max_seconds``, and silence.
    """
    if (audio is None) == (text is None):
        raise InputError("give either an audio file (--audio) or a text to say (--text), not both" if audio is not None
                         else "nothing to say: give an audio file (--audio) or a text (--text)")
    t0 = time.perf_counter()
    tts_seconds = 0.0
    phonemes = None
    if text is not None:
        from talkinghead.speech.tts import synthesize, write_wav

        speech = synthesize(text, language=language, voice=voice, words_per_minute=words_per_minute)
        tts_seconds = time.perf_counter() - t0
        if speech.seconds > max_seconds:
            raise InputError(f"the text takes {speech.seconds:.1f} s to say; the limit is {max_seconds:g} s")
        audio = write_wav(workdir / "speech.wav", speech.samples, speech.rate)
        phonemes = speech.phonemes
    assert audio is not None
    decoded = read_audio(audio, max_seconds=max_seconds)
    features = frames_for_audio(decoded, fps)
    level = peak_db(features)
    if level < SILENT_PEAK_DB:
        name = "the synthesised text" if text is not None else str(audio)
        raise InputError(f"{name}: the audio is silent (loudest instant {level:.0f} dB); nothing to lip-sync")
    return Speech(decoded, Path(audio), features, fps, time.perf_counter() - t0, tts_seconds, phonemes)


def speak(anim: Animator, out: str | Path, speech: Speech, driver: SpeechDriver | None = None,
          options: Any = None) -> SpeakResult:
    """Make ``anim``'s source (set it first) say ``speech`` (:func:`load_speech`); writes ``out`` (.mp4 with the
    speech as its sound, watermarked and signed as :meth:`Animator.animate` does with ``options``)."""
    from talkinghead.inference.animate import AnimateOptions

    if not anim.sources:
        raise InputError("set a source first (Animator.set_source)")
    t0 = time.perf_counter()
    driver = driver or SpeechDriver()
    motion = driver.track(anim.sources[0].landmarks, speech.features, speech.fps, speech.phonemes)
    # the track is already in the source's pixels: absolute mode only fits the (near-identity) alignment
    opt = dataclasses.replace(options or AnimateOptions(), relative=False)
    result = _animate_with_audio(anim, (motion.landmarks, speech.fps, motion.gaze), out, opt, speech.path)
    seconds = speech.seconds + time.perf_counter() - t0
    return SpeakResult(Path(out), result.frames, speech.fps, speech.audio.seconds, seconds, speech.tts_seconds,
                       result)


def _animate_with_audio(anim: Animator, track: tuple[np.ndarray, float, np.ndarray | None], out: str | Path, opt: Any,
                        audio: Path) -> AnimateResult:
    """``Animator.animate`` on a landmark track with ``audio`` as the output's sound track."""
    return anim.animate(track, out, dataclasses.replace(opt, audio=audio),
                        track_mouth=example_mouth() if opt.driver_mouth else None)
