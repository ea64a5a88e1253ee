"""Phoneme-driven lips against real speakers, on GRID clips, whose sentence is known from the file name
(``bbaf2n`` = "bin blue at f two now").

Per clip: eSpeak NG says the sentence, with its phoneme times; dynamic time warping of its cepstra and loudness
onto the real recording's (the clip's own audio features, each utterance trimmed to its speech) carries every
phoneme onto the real audio's timeline. The mouth opening of the clip's neutral face moved by

- ``model``: the audio model alone (what ``speak --audio`` does),
- ``model + closures``: the audio model with the lips closed on the aligned /p b m/ (what ``speak --text`` does,
  where the phoneme times are exact: :mod:`talkinghead.speech.phonemes`),
- ``viseme rules``: the mouth opening set by phoneme rules alone (a target per vowel height and consonant
  place, blended with their neighbours after Cohen & Massaro; defined here, not shipped: it lost),
- ``loudness``: the opening a linear function of loudness (fitted here on the GRID clips themselves: an upper
  bound for that baseline),

is compared with the opening tracked in the real video: Pearson r per clip and pooled, and the mean opening on
the frames of the aligned bilabials against the other speech frames (do the lips close?). The audio model was
trained on ``grid_s1``'s clips (reported apart) but not on the ``grid_spk_*`` speakers. The alignment is
automatic (its quality is printed: the correlation of the aligned synthetic loudness with the real one), so its
errors count against every phoneme-driven method.

eSpeak NG's output varies by a few samples from one call to the next (phoneme times by a few milliseconds), so
the phoneme-driven figures move by up to about 0.01 between runs.

    python benchmarks/visemes_grid.py --data /tmp/ds/speech
"""

from __future__ import annotations

import argparse
import re
import sys

import numpy as np
from lipsync import pearson  # this folder (run as a script)

from talkinghead.data.audio import STEPS_PER_FRAME, Audio, frames_for_audio, loudness
from talkinghead.faces.measures import mouth_opening
from talkinghead.speech.model import load_speech_model, normalise_level
from talkinghead.speech.phonemes import Phoneme, apply_closures, closes_lips, opening_direction
from talkinghead.speech.shapes import SPEECH_POINTS
from talkinghead.speech.train import load_speech_data
from talkinghead.speech.tts import Speech, synthesize

FPS = 25.0
_WORDS = [
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    None,  # a letter
    {"z": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
     "8": "eight", "9": "nine", "o": "zero"},
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
]


def sentence(code: str) -> str | None:
    """GRID's six-letter file code → its sentence (``None`` if the code does not parse)."""
    if not re.fullmatch(r"[a-z]{4}[0-9a-z][a-z]", code):
        return None
    words = []
    for table, ch in zip(_WORDS, code):
        if table is None:
            words.append(ch)  # eSpeak says a lone letter by its name
        elif ch in table:
            words.append(table[ch])
        else:
            return None
    return " ".join(words)


def _steps(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, S, M)`` per-frame log-mel features (level-normalised) → per step: cepstra ``(N * S, 12)``
    (c1..c12, standardised over the utterance) and loudness (dB)."""
    from scipy.fft import dct

    x = np.asarray(features, np.float64).reshape(-1, features.shape[-1])
    cep = dct(x, type=2, norm="ortho", axis=1)[:, 1:13]
    cep = (cep - cep.mean(0)) / (cep.std(0) + 1e-6)
    loud = 10 * np.log10((10 ** (x / 10)).mean(1) + 1e-12)
    return cep, loud


def speech_span(loud: np.ndarray, below_peak_db: float = 30.0) -> tuple[int, int]:
    """First and last step within ``below_peak_db`` of the loudest (smoothed) step."""
    from scipy.ndimage import uniform_filter1d

    smooth = uniform_filter1d(loud, 5)
    on = np.flatnonzero(smooth > smooth.max() - below_peak_db)
    return int(on[0]), int(on[-1]) + 1


def align(real_features: np.ndarray, speech: Speech, how: str = "dtw") -> list[Phoneme]:
    """``speech``'s phonemes (eSpeak NG saying the clip's sentence) with their times moved onto the real
    recording's (seconds at FPS):
    dynamic time warping of the two utterances' cepstra and loudness, each trimmed to its speech."""
    import librosa

    synth = frames_for_audio(Audio(speech.samples.astype(np.float32), speech.rate), FPS)
    a, la = _steps(normalise_level(synth))
    b, lb = _steps(normalise_level(real_features))
    step_s = 1.0 / (FPS * STEPS_PER_FRAME)
    offset = (STEPS_PER_FRAME - 1) / 2 * step_s  # step k of frame 0 is at (k - 1.5) steps from frame 0's time
    a0, a1 = speech_span(la)
    b0, b1 = speech_span(lb)
    fa = np.concatenate([a, 0.1 * np.clip(la, -60, 0)[:, None]], 1)[a0:a1]
    fb = np.concatenate([b, 0.1 * np.clip(lb, -60, 0)[:, None]], 1)[b0:b1]
    cost = np.linalg.norm(fa[:, None] - fb[None], axis=-1)
    _, path = librosa.sequence.dtw(C=cost, step_sizes_sigma=np.array([[1, 1], [1, 2], [2, 1]]))
    to_real: dict[int, list[int]] = {}
    for i, j in path[::-1]:
        to_real.setdefault(int(i) + a0, []).append(int(j) + b0)
    keys = np.array(sorted(to_real))
    mapped = np.interp(np.arange(a0, a1), keys, [float(np.median(to_real[k])) for k in keys])
    if how == "linear":  # the synthetic speech stretched evenly over the real speech
        mapped = b0 + (np.arange(a0, a1) - a0) * (b1 - b0) / max(a1 - a0, 1)

    def real_time(t: float) -> float:
        i = int(round((t + offset) / step_s))
        if i < a0:  # before the speech: keep the distance to its start
            return real_time(a0 * step_s - offset) - (a0 - i) * step_s
        if i >= a1:
            return real_time((a1 - 1) * step_s - offset) + (i - a1 + 1) * step_s
        return float(mapped[i - a0]) * step_s - offset

    out = [Phoneme(real_time(p.start), real_time(p.end), p.symbol) for p in speech.phonemes]
    return [Phoneme(max(p.start, 0.0), max(p.end, 0.0), p.symbol) for p in out]


# --- viseme rules (measured, not shipped): a target mouth opening (inter-ocular units, above the resting mouth)
# and a dominance per phoneme class; the opening's percentiles on the corpus's speech clips are 0.055 (median) and
# 0.17 (90th)
_OPEN, _MID, _SCHWA, _CLOSE = 0.19, 0.12, 0.09, 0.05
RULES: dict[str, tuple[float, float]] = {
    **{v: (_OPEN, 1.0) for v in ("a", "ɑ", "æ", "ɐ", "ʌ", "ɒ", "ɔ")},
    **{v: (_MID, 1.0) for v in ("ɛ", "e", "o", "ø", "œ")},
    **{v: (_SCHWA, 0.8) for v in ("ə", "ɜ", "ɚ", "ɝ", "ɪ", "ʊ", "ᵻ")},
    **{v: (_CLOSE, 1.0) for v in ("i", "u", "y", "ɨ", "ʉ", "ɯ")},
    **{c: (0.0, 4.0) for c in ("p", "b", "m")},
    **{c: (0.02, 2.5) for c in ("f", "v")},
    **{c: (0.03, 1.5) for c in ("w",)},
    **{c: (0.05, 1.2) for c in ("ʃ", "ʒ", "tʃ", "dʒ")},
    **{c: (0.05, 0.6) for c in ("ɹ", "r", "θ", "ð")},
    **{c: (0.04, 0.5) for c in ("t", "d", "n", "s", "z", "l")},
}


def rule_opening(phonemes: list[Phoneme], n_frames: int, fps: float, step: float = 0.005) -> np.ndarray:
    """The opening the rules give, per frame: each phoneme's target (a diphthong's first vowel) holds over its
    span with a Gaussian fall-off beyond, weighted by its dominance; pauses rest the mouth."""
    t = np.arange(n_frames * 8) * step
    num, den = np.zeros_like(t), np.full_like(t, 1e-3)
    for ph in phonemes:
        base = "".join(ch for ch in ph.symbol if ch not in "ˈˌːˑ")
        target = (0.0, 1.0) if not base else next((RULES[base[:k]] for k in range(len(base), 0, -1)
                                                   if base[:k] in RULES), (0.05, 0.3))
        centre, half = (ph.start + ph.end) / 2, max(ph.end - ph.start, step) / 2
        w = target[1] * np.exp(-0.5 * (np.maximum(np.abs(t - centre) - 0.6 * half, 0) / max(0.6 * half, 0.02)) ** 2)
        num += w * target[0]
        den += w
    return np.interp(np.arange(n_frames) / fps, t, num / den)


def alignment_quality(real_features: np.ndarray, speech: Speech, phonemes: list[Phoneme]) -> float:
    """Correlation of the synthetic speech's loudness, carried onto the real timeline, with the real loudness."""
    synth = loudness(normalise_level(frames_for_audio(Audio(speech.samples.astype(np.float32), speech.rate), FPS)))
    real = loudness(normalise_level(real_features))
    src, dst = [p.start for p in speech.phonemes], [p.start for p in phonemes]
    t_synth = np.interp(np.arange(len(real)) / FPS, dst, src)
    return pearson(np.clip(np.interp(t_synth * FPS, np.arange(len(synth)), synth), -60, 0), np.clip(real, -60, 0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a prepared dataset with audio features (format 2)")
    ap.add_argument("--model", help="speech model file (default: the shipped one)")
    ap.add_argument("--align", choices=("dtw", "linear"), default="dtw",
                    help="how the phoneme times reach the real audio (default dtw; linear: stretched evenly)")
    args = ap.parse_args()

    model = load_speech_model(args.model)
    clips = load_speech_data(args.data, "train", identities=["grid*"])
    val = load_speech_data(args.data, "val", identities=["grid*"])
    for name in ("keys", "features", "aligned", "neutrals", "sync"):
        getattr(clips, name).extend(getattr(val, name))
    trained = set((getattr(model, "info", {}) or {}).get("clips") or [])
    methods = ("model", "model + closures", "viseme rules", "loudness")
    lx = np.concatenate([loudness(f) for f in clips.features])
    ly = np.concatenate([mouth_opening(a) - mouth_opening(n) for a, n in zip(clips.aligned, clips.neutrals)])
    slope, intercept = np.polyfit(lx, ly, 1)
    rows = []
    for key, feats, aligned, neutral in zip(clips.keys, clips.features, clips.aligned, clips.neutrals):
        text = sentence(key.rsplit("__", 1)[-1].split("_")[0])
        if text is None:
            continue
        speech = synthesize(text, language="en")
        phonemes = align(feats, speech, args.align)
        disp = model.predict(feats)
        base = float(mouth_opening(neutral))
        row = {"clip": key, "text": text, "trained": key in trained, "true": mouth_opening(aligned),
               "align": alignment_quality(feats, speech, phonemes)}
        for name, d in (("model", disp), ("model + closures", apply_closures(disp, neutral, opening_direction(
                model, neutral), phonemes, FPS))):
            shapes = np.repeat(neutral[None], len(d), 0)
            shapes[:, SPEECH_POINTS] += d
            row[name] = mouth_opening(shapes)
        row["viseme rules"] = base + rule_opening(phonemes, len(disp), FPS)
        row["loudness"] = base + np.maximum(0.0, intercept + slope * loudness(feats))
        middles = {int(round((p.start + p.end) / 2 * FPS)): closes_lips(p.symbol) for p in phonemes if p.symbol}
        row["bilabial"] = sorted(f for f, shut in middles.items() if shut and f < len(disp))
        row["other"] = sorted(f for f, shut in middles.items() if not shut and f < len(disp))
        for name in methods:
            row[f"r {name}"] = pearson(row[name], row["true"])
        rows.append(row)

    print(f"speech model: {args.model or 'shipped'}; {len(rows)} GRID clips; alignment: {args.align}\n")
    print("| clip | sentence | audio model trained on it | alignment r | "
          + " | ".join(f"r {m}" for m in methods) + " |")
    print("|---|---|---|---|" + "---|" * len(methods))
    for r in rows:
        print(f"| {r['clip'].split('/')[-1]} | {r['text']} | {'yes' if r['trained'] else 'no'} | {r['align']:.2f} | "
              + " | ".join(f"{r[f'r {m}']:.3f}" for m in methods) + " |")
    print("\nPooled r, mean of per-clip r, and the mean opening on the aligned bilabials' middle frames / on the "
          "other phonemes' (inter-ocular units):\n")
    print("| clips | n | " + " | ".join(methods) + " | opening real | " + " | ".join(f"opening {m}" for m in methods[:3])
          + " |")
    print("|---|---|" + "---|" * (2 * len(methods)))
    for label, subset in (("speakers the audio model never heard", [r for r in rows if not r["trained"]]),
                          ("grid_s1 (the audio model trained on them)", [r for r in rows if r["trained"]]),
                          ("well aligned (alignment r >= 0.75)", [r for r in rows if r["align"] >= 0.75])):
        if not subset:
            continue
        true = np.concatenate([r["true"] for r in subset])
        cells = [f"{pearson(np.concatenate([r[m] for r in subset]), true):.3f} / "
                 f"{np.nanmean([r[f'r {m}'] for r in subset]):.3f}" for m in methods]
        shut = [f"{np.mean(np.concatenate([r[m][r['bilabial']] for r in subset])):.3f} / "
                f"{np.mean(np.concatenate([r[m][r['other']] for r in subset])):.3f}" for m in ("true", *methods[:3])]
        print(f"| {label} | {len(subset)} | " + " | ".join(cells) + " | " + " | ".join(shut) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
