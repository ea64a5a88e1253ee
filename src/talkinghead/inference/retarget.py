"""Landmark adaptation: move the source face the way the driving face moves, keeping the source's geometry.

The paper drives the generator with the driver's own landmarks, so a driver with a wider jaw gives the result a
wider jaw (identity leakage). In *relative* mode we instead take each driving frame's displacement from the
driver's reference frame, express it in the source's scale and orientation (a similarity transform fitted
between the two reference shapes), and add it to the source's landmarks. *Absolute* mode only aligns the
driver's landmarks onto the source's position and size.

Relative motion needs a reference frame in which the driver looks as the source does (the same expression and
about the same pose): a driver whose first frame has an open mouth would otherwise animate a closed-mouth photo
with its mouth held shut, and a grimace in the first frame would be subtracted from every later one.
:func:`reference_index` picks, among candidate driving frames, the one most like the source, never one in a blink.
"""

from __future__ import annotations

import numpy as np

from talkinghead.faces.measures import apply, eye_centres, eye_opening, interocular, mouth_opening, similarity, turn

# Points that move little with expression (brows' inner ends, eye corners, nose): used to fit head pose.
STABLE = np.array([21, 22, 27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])


def reference_distance(driving: np.ndarray, source: np.ndarray) -> float:
    """How unlike the source's pose and expression a driving face is, in units of the inter-ocular distance: the
    RMS residual of the least-squares similarity fit of the driver's 68 landmarks onto the source's, plus the
    differences in mouth and eye opening. (The driver's own face shape adds about the same to every frame of one
    driver, so it does not sway a choice between them; the openings are what relative motion must not get wrong: a
    reference with the mouth open pushes a closed mouth's lips through each other when the driver closes it.)"""
    mapped = apply(similarity(driving, source), driving)
    iod = float(interocular(source))
    shape = float(np.sqrt(((mapped - source) ** 2).sum(1).mean()) / max(iod, 1e-6))
    return shape + abs(float(mouth_opening(driving) - mouth_opening(source))) + \
        abs(float(eye_opening(driving) - eye_opening(source)))


BLINK = 0.75
"""A driving frame whose eye opening is below this fraction of the median over the candidates is taken to be in
a blink, and is not a reference while any other frame is: from a blink reference every later frame's eyes would
open wider than the source's, and the driver's blinks would cancel out (the output never blinks)."""


def in_blink(landmarks: np.ndarray) -> np.ndarray:
    """Which of these faces ``(N, 68, 2)`` are in a blink: eye opening under :data:`BLINK` of their median."""
    eyes = eye_opening(landmarks)
    return eyes < BLINK * float(np.median(eyes))


def reference_index(candidates: list[np.ndarray | None], source: np.ndarray) -> int | None:
    """The index of the candidate driving landmarks (None: no face) most like ``source`` in pose and expression
    (:func:`reference_distance`), leaving out frames in a blink (:data:`BLINK`); None if no candidate has a
    face."""
    faces = [(i, c) for i, c in enumerate(candidates) if c is not None]
    if not faces:
        return None
    blinks = in_blink(np.stack([c for _, c in faces]))
    open_eyes = [f for f, b in zip(faces, blinks) if not b] or faces
    return min((reference_distance(c, source), i) for i, c in open_eyes)[1]


MAX_ZOOM = 1.1
"""Relative motion changes the face's size by at most this factor (up or down) from the photo's. A driver who
leans towards the camera grows by a third (``styletalk_surprisegirl``: 1.34); the warp holds the crop's border, so
the photo's face then swelled while its hair, neck and shoulders stayed, a balloon of a face (LFW portraits looked
at). Talking and nodding stay well inside it (90th percentile of the size change 1.03 on ``pcavs_pose``, 1.09 on
``lp_d6_woman_grimace``)."""


MAX_SHIFT = 0.5
"""Relative motion moves the face at most this many inter-ocular distances (of the photo's face) from where the
photo has it; past half of that the motion is eased in (:func:`eased`). The warp holds the crop's border and
the body stays: a driver who rises 1.5 inter-ocular distances in his frame (``lp_d20_asian_man``) pushed a
portrait's face up against the crop's top, its eyes smeared into its hair and its neck drawn out long."""


def eased(length: float, limit: float) -> float:
    """``length`` itself up to half of ``limit``, then eased towards ``limit`` (tanh), never past it."""
    knee = limit / 2
    return length if length <= knee else knee + (limit - knee) * float(np.tanh((length - knee) / (limit - knee)))


MAX_TURN = 1.5
"""Relative motion turns the face at most so far that either cheek (the nose bridge to the jaw line's side, along
the eye line: :func:`~talkinghead.faces.measures.turn`) looks this many times as wide as in the photo. The warp
moves the photo's pixels in two dimensions: a face turned three-quarters away, driven by a driver who turns
towards the camera, had the sliver between its far eye and its jaw line stretched several times over, the lashes
smeared across the cheek (``3ddfa_v2__emma`` driven by ``lp_d3_woman``: the far cheek 3.3 times its width)."""

FEATURE_GROUPS = (np.arange(48, 68), np.arange(36, 42), np.arange(42, 48), np.arange(17, 22), np.arange(22, 27))
"""The mouth, the eyes and the brows: how each changes its own shape (the expression) is kept whole by
:func:`limit_turn`; only where each one goes is turned less."""


def cheek_stretch(source: np.ndarray, target: np.ndarray) -> float:
    """How many times wider the target's wider-grown cheek looks than the source's (1: neither grew)."""
    s, t = float(turn(source)), float(turn(target))
    return max(t / max(s, 1e-3), (1.0 - t) / max(1.0 - s, 1e-3))


def limit_turn(source: np.ndarray, target: np.ndarray, head: np.ndarray, max_turn: float,
               iterations: int = 14) -> np.ndarray:
    """``target`` landmarks, turned back towards ``source``'s pose until no cheek looks more than ``max_turn`` times
    as wide as in the source (:func:`cheek_stretch`); unchanged when none does. ``head``: the head's similarity
    motion (it is kept: moving, tilting and scaling do not stretch a cheek). Of the rest, the part along the eye
    line that moves the features and the jaw line as wholes (the 2-D trace of a turn) is scaled down, as little as
    the limit allows (bisection); the mouth's, eyes' and brows' own changes of shape and all motion across the eye
    line (a nod, a jaw that drops) are kept."""
    if cheek_stretch(source, target) <= max_turn:
        return target
    rigid = apply(head, source).astype(np.float64)
    rest = np.asarray(target, np.float64) - rigid
    shape = np.zeros_like(rest)
    for g in FEATURE_GROUPS:
        shape[g] = rest[g] - rest[g].mean(0)
    a, b = eye_centres(rigid)
    u = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
    along = ((rest - shape) @ u)[:, None] * u[None]
    fixed = rigid + rest - along

    def turned(share: float) -> np.ndarray:
        return fixed + share * along

    lo, hi = 0.0, 1.0
    if cheek_stretch(source, turned(0.0)) > max_turn:
        return turned(0.0).astype(np.float32)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cheek_stretch(source, turned(mid)) <= max_turn else (lo, mid)
    return turned(lo).astype(np.float32)


class Retargeter:
    """Map driving landmarks (driver's frame pixels) to target landmarks in the source crop's pixels.

    ``source``: ``(68, 2)`` landmarks of the source in crop pixels. ``reference``: the driver's landmarks in the
    frame taken as the neutral pose (by default the first driving frame with a face). ``max_zoom``: in relative
    mode, the head's change of size from the reference is limited to this factor either way (:data:`MAX_ZOOM`;
    0 = no limit). ``max_shift``: in relative mode, how far the face may move, in inter-ocular distances
    (:data:`MAX_SHIFT`; 0 = no limit). ``max_turn``: in relative mode, how far the face may turn (:data:`MAX_TURN`,
    :func:`limit_turn`; 0 = no limit).
    """

    def __init__(self, source: np.ndarray, relative: bool = True, max_zoom: float = MAX_ZOOM,
                 max_turn: float = MAX_TURN, max_shift: float = MAX_SHIFT) -> None:
        if max_zoom and max_zoom < 1.0:
            raise ValueError(f"max_zoom must be 0 (no limit) or at least 1, not {max_zoom}")
        if max_shift < 0:
            raise ValueError(f"max_shift must be 0 (no limit) or more, not {max_shift}")
        if max_turn and max_turn < 1.0:
            raise ValueError(f"max_turn must be 0 (no limit) or at least 1, not {max_turn}")
        self.source = np.asarray(source, np.float32)
        self.relative = relative
        self.max_zoom = max_zoom
        self.max_turn = max_turn
        self.max_shift = max_shift
        self._iod = float(interocular(self.source))
        self.reference: np.ndarray | None = None
        self._to_source: np.ndarray | None = None

    def set_reference(self, driving: np.ndarray) -> None:
        self.reference = np.asarray(driving, np.float32)
        self._to_source = similarity(self.reference[STABLE], self.source[STABLE]) if self.relative else \
            similarity(self.reference, self.source)

    def __call__(self, driving: np.ndarray) -> np.ndarray:
        if self.reference is None:
            self.set_reference(driving)
        assert self._to_source is not None
        mapped = apply(self._to_source, driving)
        if not self.relative:
            return mapped
        # displacement from the reference pose, in source scale/orientation, added to the source shape
        ref_mapped = apply(self._to_source, self.reference)
        if self.max_zoom:
            head = similarity(ref_mapped[STABLE], mapped[STABLE])  # the head's motion since the reference
            zoom = float(np.sqrt(abs(np.linalg.det(head[:, :2]))))
            limited = min(max(zoom, 1.0 / self.max_zoom), self.max_zoom)
            if limited != zoom:  # shrink the driving face about its own centre, back inside the limit
                centre = apply(head, ref_mapped[STABLE].mean(0, keepdims=True))[0]
                mapped = (mapped - centre) * (limited / zoom) + centre
        if self.max_shift:
            centre = ref_mapped[STABLE].mean(0)
            shift = apply(similarity(ref_mapped[STABLE], mapped[STABLE]), centre[None])[0] - centre
            length = float(np.linalg.norm(shift)) / max(self._iod, 1e-6)
            kept = eased(length, self.max_shift)
            if kept < length:  # move the driving face back towards the reference, inside the limit
                mapped = mapped - shift * (1.0 - kept / length)
        target = (self.source + (mapped - ref_mapped)).astype(np.float32)
        if self.max_turn:
            target = limit_turn(self.source, target, similarity(ref_mapped[STABLE], mapped[STABLE]), self.max_turn)
        return target
