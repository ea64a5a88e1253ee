"""Offline text to speech with eSpeak NG (formant synthesis: robotic, but intelligible, in ~100 languages).

The engine is the ``libespeak-ng`` shared library and its data that the PyPI wheel ``espeakng-loader`` ships
(installed by ``make``/``requirements.lock``); we call its C API through :mod:`ctypes`, so nothing is downloaded
and no program must be on the PATH. ``TALKINGHEAD_ESPEAK_LIB`` / ``TALKINGHEAD_ESPEAK_DATA`` point at another
build (e.g. Debian's ``libespeak-ng1``: ``/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1`` and
``/usr/lib/x86_64-linux-gnu/espeak-ng-data``).

eSpeak NG is GPL-3.0-or-later; it is loaded at run time, never bundled in talkinghead (Apache-2.0).

- ``language``: an eSpeak NG language or voice name: ``en``, ``en-us``, ``fr``, ``de``, ``es``, ``zh``, ...
  (:func:`languages` lists them).
- ``voice``: a voice variant: ``m1``...``m7``, ``f1``...``f5``, ``klatt``, ``whisper``, ... (:func:`voices`), or
  eSpeak NG's ``LANGUAGE+VARIANT`` (``en-us+f3``), whose language part then replaces ``language``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.speech.phonemes import Phoneme

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1
_LOCK = threading.Lock()
MAX_TEXT_CHARS = 2000


def _c_stderr(call: Callable[[], int]) -> tuple[int, str]:
    """Run ``call`` with the process's file descriptor 2 captured (eSpeak NG prints its own complaints there, which
    would come before our one-line error): its result, and what it printed."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result = call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode("utf-8", "replace")


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h); for a phoneme event ``id`` holds its IPA (up to 8 bytes of UTF-8)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA = 0x0001, 0x0002


@dataclass
class Speech:
    samples: np.ndarray
    """Mono float32 in [-1, 1]."""
    rate: int
    language: str
    voice: str | None
    phonemes: list[Phoneme] = field(default_factory=list)
    """What is said when: eSpeak NG's phonemes (IPA) with their times in ``samples``."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


class _Engine:
    def __init__(self) -> None:
        lib_path, data_path = _locate()
        try:
            self.lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise TalkingHeadError(f"cannot load eSpeak NG from {lib_path}: {exc}") from None
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synchronize.restype = ctypes.c_int
        self.rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                          _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA)
        if self.rate <= 0:
            raise TalkingHeadError(f"eSpeak NG could not start with its data in {data_path}")
        self.chunks: list[np.ndarray] = []
        self.marks: list[tuple[int, str]] = []

        def collect(wav: ctypes._Pointer, n: int, events: ctypes._Pointer) -> int:
            if n > 0 and wav:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events and events[i].type != _EVENT_END_OF_LIST:
                if events[i].type == _EVENT_PHONEME:  # audio_position: milliseconds from the start
                    self.marks.append((int(events[i].audio_position), events[i].id.decode("utf-8", "replace")))
                i += 1
            return 0

        self.callback = _CALLBACK(collect)  # keep a reference: the library holds only the pointer
        lib.espeak_SetSynthCallback(self.callback)

    def _list(self, spec: _Voice | None) -> list[_Voice]:
        out = []
        arr = self.lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        i = 0
        while arr and arr[i]:
            out.append(arr[i].contents)
            i += 1
        return out

    def languages(self) -> dict[str, str]:
        """Language/voice identifiers (``en``, ``en-us``, ``fr``, ...) → the voice's name."""
        return {lang: name for lang, (name, _) in self._voice_files().items()}

    def _voice_files(self) -> dict[str, tuple[str, str]]:
        """Language/voice identifiers → (the voice's name, the voice file that speaks it: ``en``, ``cmn``...)."""
        best: dict[str, tuple[int, str, str]] = {}  # language → (priority: lower is better, name, file)
        for v in self._list(None):
            name = (v.name or b"").decode()
            file = (v.identifier or b"").decode().split("/")[-1]
            addr = v.languages or 0
            while addr and ctypes.string_at(addr, 1) != b"\0":  # (priority byte, name, NUL)..., then a zero byte
                priority = ctypes.string_at(addr, 1)[0]
                lang = ctypes.string_at(addr + 1)
                key = lang.decode(errors="replace")
                if key not in best or priority < best[key][0]:
                    best[key] = (priority, name, file)
                addr += len(lang) + 2
            if file and file not in best:
                best[file] = (255, name, file)
        return {lang: (name, file) for lang, (_, name, file) in best.items()}

    def voices(self) -> list[str]:
        """Voice variants (``m1``, ``f3``, ``klatt``, ``whisper``, ...)."""
        name = ctypes.create_string_buffer(b"variant")
        spec = _Voice(languages=ctypes.cast(name, ctypes.c_void_p))
        return sorted({(v.identifier or b"").decode().split("/")[-1] for v in self._list(spec)} - {""})

    def _set_voice(self, name: str) -> tuple[int, str]:
        """``espeak_SetVoiceByName``: its status (0 = done) and what eSpeak NG printed meanwhile."""
        return _c_stderr(lambda: self.lib.espeak_SetVoiceByName(name.encode()))

    def say(self, text: str, language: str, voice: str | None,
            words_per_minute: int) -> tuple[np.ndarray, list[Phoneme]]:
        variant = f"+{voice}" if voice else ""
        name = language + variant
        status, said = self._set_voice(name)
        if status != 0:
            # a language code that is not itself a voice file (zh, en-gb, fr-fr, pt-pt...): the file that speaks it
            file = self._voice_files().get(language, ("", ""))[1]
            status, more = self._set_voice(file + variant) if file else (1, "")
            said += more
            if status != 0:
                raise InputError(f"eSpeak NG cannot use the voice {name!r}")
        if "dictionary" in said:  # listed, but this installation lacks its dictionary (fo, kaa, xex in the wheel)
            raise InputError(f"eSpeak NG has no dictionary for the language {language!r} here; choose another "
                             "(talkinghead speak --list-voices)")
        self.lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
        self.chunks, self.marks = [], []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if err != 0:
            raise TalkingHeadError(f"eSpeak NG failed to synthesise the text (error {err})")
        pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        seconds = len(pcm) / self.rate
        starts = [min(ms / 1000.0, seconds) for ms, _ in self.marks] + [seconds]
        phonemes = [Phoneme(a, max(b, a), sym) for (a, b), (_, sym) in zip(zip(starts, starts[1:]), self.marks)]
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32), phonemes


def _locate() -> tuple[str, str]:
    lib, data = os.environ.get("TALKINGHEAD_ESPEAK_LIB"), os.environ.get("TALKINGHEAD_ESPEAK_DATA")
    if lib and data:
        return lib, data
    try:
        import espeakng_loader
    except ImportError:
        raise TalkingHeadError("text to speech needs eSpeak NG: pip install espeakng-loader==0.2.4 (or set "
                               "TALKINGHEAD_ESPEAK_LIB and TALKINGHEAD_ESPEAK_DATA)") from None
    return lib or espeakng_loader.get_library_path(), data or espeakng_loader.get_data_path()


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    return _Engine()


def languages() -> list[str]:
    with _LOCK:
        return sorted(_engine().languages())


def voices() -> list[str]:
    with _LOCK:
        return _engine().voices()


def synthesize(text: str, language: str = "en", voice: str | None = None, words_per_minute: int = 160) -> Speech:
    """Speak ``text``; raises :class:`InputError` for empty text or an unknown language or voice."""
    text = (text or "").strip()
    if not text:
        raise InputError("the text is empty: give some words to say (--text \"...\")")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if not 80 <= words_per_minute <= 450:
        raise InputError(f"speaking rate {words_per_minute} words/min is out of range (80..450)")
    if voice and "+" in voice:
        # eSpeak NG's own spelling, LANGUAGE+VARIANT ("en-us+f3"): its language part names the language
        lang, _, voice = voice.partition("+")
        language = lang.strip() or language
        voice = voice.strip() or None
    with _LOCK:
        engine = _engine()
        known = {k.lower(): k for k in engine.languages()}
        language = known.get(language.strip().lower(), language)
        if language.lower() not in known:
            close = sorted(k for k in known if k.split("-")[0] == language.split("-")[0].lower())[:8]
            hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. en, en-us, fr, de, es)"
            raise InputError(f"unknown language {language!r} for eSpeak NG{hint}")
        if voice:
            variants = engine.voices()
            if voice not in variants:
                raise InputError(f"unknown voice {voice!r}; eSpeak NG's voices include "
                                 f"{', '.join(v for v in variants if v in ('m1', 'm3', 'f1', 'f3', 'klatt', 'whisper'))}"
                                 f" ({len(variants)} in all: talkinghead speak --list-voices)")
        samples, phonemes = engine.say(text, language, voice, words_per_minute)
        rate = engine.rate
    if samples.size == 0 or float(np.abs(samples).max()) < 1e-4:
        raise InputError(f"eSpeak NG produced no sound for this text in {language!r}")
    return Speech(samples, rate, language, voice, phonemes)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV (for the output's audio track)."""
    import wave

    path = Path(path)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())
    return path
