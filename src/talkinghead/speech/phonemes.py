"""Phonemes with their times, and what they do to the lips: text spoken by the TTS engine closes the lips on
/p/, /b/ and /m/.

The audio model (:mod:`.model`) opens and closes the mouth with the sound, but smoothly: it has learnt the
corpus's landmark tracks, and on a bilabial it leaves the lips parted (on ``speak --text "...Mona Lisa..."``
the opening at the /m/ frames was the same as at the vowels'). When the words are known, the lips can do what
every viewer expects: meet on the bilabials. eSpeak NG says which phoneme starts when (IPA, millisecond times,
:func:`talkinghead.speech.tts.synthesize`); the frames of each bilabial, and the frame nearest its middle, are
closed, the closure fading over about one frame on either side, and everywhere else the audio model's motion is
kept.

Only the closures are applied. Rules for the other mouth shapes (opening by vowel height, rounding on /o u w/,
spreading on /i e/) were measured against real speakers and lost to the audio model (``benchmarks/visemes_grid.py``,
the README's speech section).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talkinghead.faces.measures import mouth_opening
from talkinghead.speech.shapes import SPEECH_POINTS

BILABIALS = frozenset({"p", "b", "m", "ɓ", "ʙ", "ɸ", "β"})
"""IPA consonants made with both lips (closed for the stops and the nasal; the fricatives nearly)."""
_MARKS = "ˈˌːˑ̃̆͡‿_-!^#|ʰʲʷ"


@dataclass(frozen=True)
class Phoneme:
    start: float
    """Seconds from the start of the audio."""
    end: float
    symbol: str
    """IPA, as eSpeak NG writes it (stress marks included; ``""`` for a pause)."""


def closes_lips(symbol: str) -> bool:
    """Whether a phoneme (IPA, stress and length marks allowed) is a bilabial: ``"m"``, ``"b"``, ``"pʰ"``..."""
    base = "".join(ch for ch in symbol if ch not in _MARKS)
    return base in BILABIALS


def closure(phonemes: Sequence[Phoneme], n_frames: int, fps: float, lead: float = 0.02,
            spread: float = 1.0) -> np.ndarray:
    """How closed the lips are held, per video frame (frame ``i`` at ``i / fps``): ``(T,) float32`` in [0, 1].

    1 on the frames within a bilabial and on the frame nearest its middle (a closure shorter than a frame is
    still seen); ``lead``: the lips close this many seconds before the sound is heard; ``spread``: the closure
    fades on either side (a Gaussian of this standard deviation in frames: a one-frame closure holds its
    neighbours 24 % closed)."""
    from scipy.ndimage import gaussian_filter1d

    out = np.zeros(max(int(n_frames), 0), np.float64)
    for ph in phonemes:
        if not closes_lips(ph.symbol):
            continue
        a, b = (ph.start - lead) * fps, (ph.end - lead) * fps
        middle = (ph.start + ph.end) / 2 * fps
        frames = set(range(int(np.ceil(a)), int(np.floor(b)) + 1))
        frames |= {int(round(middle - lead * fps)), int(round(middle))}
        for f in frames:
            if 0 <= f < len(out):
                out[f] = 1.0
    if spread > 0 and len(out) > 1:
        out = np.maximum(out, gaussian_filter1d(out, spread, mode="constant"))
    return out.astype(np.float32)


def opening_direction(model: object, canon: np.ndarray) -> np.ndarray:
    """Displacements ``(37, 2)`` per unit of mouth opening: the speech model's fit on the corpus (``open_dir``,
    present when it mixes in the loudness jaw), else a geometric one for the face ``canon`` (the lower lip moves
    down by the opening, the upper lip a little up, the chin with the lower lip)."""
    fitted = getattr(model, "open_dir", None)
    if fitted is not None and float(np.abs(np.asarray(fitted)).sum()) > 0:
        return np.asarray(fitted, np.float32).reshape(-1, 2)
    canon = np.asarray(canon, np.float64)
    out = np.zeros((len(SPEECH_POINTS), 2))
    lower_lip = {55, 56, 57, 58, 59, 65, 66, 67}
    upper_lip = {49, 50, 51, 52, 53, 61, 62, 63}
    chin_y, mouth_y = canon[8, 1], canon[48:68, 1].mean()
    for i, p in enumerate(SPEECH_POINTS.tolist()):
        if p in lower_lip:
            out[i, 1] = 0.8
        elif p in upper_lip:
            out[i, 1] = -0.2
        elif p < 17:  # the jaw line: the lower, the more it drops
            out[i, 1] = 0.8 * float(np.clip((canon[p, 1] - mouth_y) / max(chin_y - mouth_y, 1e-6), 0.0, 1.0))
        elif p in (48, 54, 60, 64):  # corners: half way
            out[i, 1] = 0.3
    return out.astype(np.float32)


REST_OPENING = 0.03
"""The mouth opening (inner-lip gap / inter-ocular distance) of a face at rest: the median over the resting faces
(:func:`~talkinghead.speech.shapes.neutral_face`) of the 82 corpus training clips with sound (their 10th-90th
percentiles: 0.008-0.053)."""

OPEN_PHOTO = 0.06
"""A photo whose mouth opens wider than this (above 9 in 10 resting faces; a smile showing teeth: 0.15-0.21) is
taken to show an open mouth, not one at rest (:func:`rest_mouth`)."""


def _gap_gain(canon: np.ndarray, open_dir: np.ndarray) -> float:
    """This face's inter-lip gap per unit of ``open_dir`` (about 1, but the gap is a norm of this face's points)."""
    probe = canon.copy()
    probe[SPEECH_POINTS] += 0.1 * open_dir
    return max((float(mouth_opening(probe)) - float(mouth_opening(canon))) / 0.1, 0.2)


def rest_mouth(canon: np.ndarray, open_dir: np.ndarray, above: float = OPEN_PHOTO,
               rest: float = REST_OPENING) -> np.ndarray:
    """The face ``canon`` (canonical coordinates, ``(68, 2)``) with its mouth moved to rest (``rest``
    inter-ocular distances open, along ``open_dir``) where the photo shows it open wider than ``above``; else
    unchanged. The audio model's displacements are learnt from resting faces, so added to a photo's open mouth
    (a smile showing teeth) they never close it: the mouth would stay open through every pause and /p b m/."""
    canon = np.asarray(canon, np.float64)
    base = float(mouth_opening(canon))
    if base <= above:
        return canon.astype(np.float32)
    open_dir = np.asarray(open_dir, np.float64).reshape(-1, 2)
    out = canon.copy()
    out[SPEECH_POINTS] += (rest - base) / _gap_gain(canon, open_dir) * open_dir
    return out.astype(np.float32)


def apply_closures(disp: np.ndarray, canon: np.ndarray, open_dir: np.ndarray, phonemes: Sequence[Phoneme],
                   fps: float, closed_opening: float = 0.01) -> np.ndarray:
    """The audio model's displacements ``(T, 37, 2)`` with the lips closed on the bilabials (:func:`closure`):
    the mouth opening moves, along ``open_dir`` (``(37, 2)`` per unit of opening), to ``closed_opening``
    inter-ocular distances, even on a face photographed with its mouth open. ``canon``: the source face in
    canonical coordinates ``(68, 2)``."""
    disp = np.asarray(disp, np.float64)
    n = len(disp)
    c = closure(phonemes, n, fps).astype(np.float64)
    if not c.any():
        return disp.astype(np.float32)
    canon = np.asarray(canon, np.float64)
    base = float(mouth_opening(canon))
    open_dir = np.asarray(open_dir, np.float64).reshape(-1, 2)
    gain = _gap_gain(canon, open_dir)
    shapes = canon[None].repeat(n, 0)
    shapes[:, SPEECH_POINTS] += disp
    current = mouth_opening(shapes).astype(np.float64) - base
    closed = -max(base - closed_opening, 0.0)  # relative to this face's rest
    target = (1.0 - c) * current + c * np.minimum(current, closed)
    return (disp + ((target - current) / gain)[:, None, None] * open_dir[None]).astype(np.float32)
