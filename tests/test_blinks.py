"""The driver's blinks: read relative to its usual eye opening, and closed in the output by lids slid over the eyes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.inference.blinks import (
    CLOSED,
    FADE,
    MAX_BLINK,
    START,
    WINDOW,
    BlinkFollower,
    close_lids,
    lid_cover,
)

SKIN = (200, 160, 140)


def _face(opening: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured face with two white eyes 40 px wide, each with a dark iris in its middle, brows 22 px above
    them, and landmarks outlining eyes and brows (the rest of the 68 further down the face)."""
    img = np.full((256, 256, 3), SKIN, np.uint8)
    lmk = np.full((68, 2), 128.0, np.float32)
    lmk[:, 1] = 170.0
    for first, brow, x0 in ((36, 17, 70.0), (42, 22, 146.0)):
        y, half = 120.0, opening / 2
        lmk[first:first + 6] = [[x0, y], [x0 + 13, y - half], [x0 + 27, y - half], [x0 + 40, y], [x0 + 27, y + half],
                                [x0 + 13, y + half]]
        lmk[brow:brow + 5] = np.stack([np.linspace(x0, x0 + 40, 5), np.full(5, y - 22.0)], 1)
        cv2.ellipse(img, (int(x0 + 20), int(y)), (20, int(half)), 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(img, (int(x0 + 20), int(y)), 7, (40, 30, 25), -1)
        cv2.ellipse(img, (int(x0 + 20), int(y)), (21, int(half) + 1), 0, 0, 360, SKIN, 2)  # the lids
        cv2.line(img, (int(x0), int(y - 22)), (int(x0 + 40), int(y - 22)), (60, 40, 30), 3)  # the brow
    return img, lmk


def _eye_box(lmk: np.ndarray, first: int) -> tuple[slice, slice]:
    x0, y0 = np.floor(lmk[first:first + 6].min(0)).astype(int)
    x1, y1 = np.ceil(lmk[first:first + 6].max(0)).astype(int)
    return slice(y0, y1 + 1), slice(x0 + 4, x1 - 3)


def test_the_lids_cover_more_as_the_drivers_eyes_close() -> None:
    assert lid_cover(None) == 0.0 and lid_cover(float("nan")) == 0.0
    assert lid_cover(1.0) == 0.0 and lid_cover(START) == 0.0  # the detector's noise is left alone
    assert lid_cover(CLOSED) == 1.0 and lid_cover(0.3) == 1.0  # what dlib reads on closed eyes
    between = [lid_cover(r) for r in np.linspace(START - 0.01, CLOSED + 0.01, 8)]
    assert all(0.0 < c < 1.0 for c in between) and np.all(np.diff(between) > 0)


def test_a_closed_lid_covers_the_eye_and_leaves_the_rest_as_it_was() -> None:
    img, lmk = _face()
    assert close_lids(img, lmk, 0.0) is img
    shut = close_lids(img, lmk, 1.0)
    gray, gray_shut = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (img, shut))
    for first in (36, 42):
        box = _eye_box(lmk, first)
        assert gray[box].min() < 60  # the iris was there
        assert gray_shut[box].min() > 120, gray_shut[box].min()  # now lid skin: no iris, no white
        assert (np.abs(shut[box].astype(int) - SKIN).max(-1) < 50).mean() > 0.97  # skin, bar the lash line
    # only the eyes and the skin between them and the brows were touched; the brows stay
    near = np.zeros(img.shape[:2], bool)
    for first in (36, 42):
        (x0, y0), (x1, y1) = lmk[first:first + 6].min(0), lmk[first:first + 6].max(0)
        near[int(y0) - 16:int(y1) + 5, int(x0) - 5:int(x1) + 6] = True
    assert np.array_equal(shut[~near], img[~near])
    assert np.array_equal(shut[95:100], img[95:100])  # the brows' rows


def test_a_half_closed_lid_covers_the_iris_instead_of_squeezing_it() -> None:
    img, lmk = _face()
    half = close_lids(img, lmk, 0.5)
    eyes = slice(105, 140)  # below the brows
    dark = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[eyes] < 80
    dark_half = cv2.cvtColor(half, cv2.COLOR_RGB2GRAY)[eyes] < 80
    rows_before, rows_after = np.flatnonzero(dark.any(1)), np.flatnonzero(dark_half.any(1))
    assert rows_after.max() == rows_before.max()  # the iris' lower edge did not move ...
    assert rows_after.min() > rows_before.min() + 5  # ... its upper part is under the lid
    below = slice(124, 128)  # under the lid's new edge the eye is what it was
    assert np.array_equal(half[below, 80:100], img[below, 80:100])


def test_blinks_are_read_against_the_drivers_usual_opening() -> None:
    follow = BlinkFollower()
    _, open_eyes = _face(16.0)
    _, blinking = _face(7.0)
    for _ in range(WINDOW):
        assert follow.relative(open_eyes) == pytest.approx(1.0)
    assert follow.relative(blinking) < CLOSED
    narrow = BlinkFollower()  # a narrow-eyed driver's eyes are its normal, not a blink
    _, squint = _face(9.0)
    for _ in range(WINDOW):
        assert narrow.observe(squint) == 0.0


def test_lids_that_stay_down_longer_than_a_blink_are_left_to_the_landmarks() -> None:
    follow = BlinkFollower()
    _, open_eyes = _face(16.0)
    _, low = _face(7.0)
    for _ in range(WINDOW):
        assert follow.observe(open_eyes) == 0.0
    covers = [follow.observe(low) for _ in range(MAX_BLINK + FADE + 3)]  # a look down, 0.6 s
    assert covers[:MAX_BLINK] == [1.0] * MAX_BLINK  # as long as a blink lasts: closed
    assert np.all(np.diff(covers[MAX_BLINK - 1:MAX_BLINK + FADE]) < 0) and covers[-1] == 0.0  # then the landmarks'
    assert follow.observe(open_eyes) == 0.0 and follow.observe(low) == 1.0  # the next blink closes again


def test_frame_step_closes_the_outputs_eyes_in_the_drivers_blink(micro_warp_model, astronaut_png) -> None:
    from talkinghead.inference.animate import AnimateOptions, Animator, FrameStep

    anim = Animator(micro_warp_model, device="cpu")
    anim.set_source([astronaut_png], progress=False)
    src = anim.sources[0].landmarks
    blink = src.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):  # the upper lids most of the way down
        blink[upper] += 0.6 * (src[lower] - src[upper])
    on = FrameStep(anim, AnimateOptions(progress=False))
    off = FrameStep(anim, AnimateOptions(progress=False, full_blinks=False))
    for _ in range(20):  # a landmark track (no frames): the reading comes from the landmarks alone
        assert on.parts(src, None).lids == 0.0
        assert off.parts(src, None) is None
    parts = on.parts(blink, None)
    assert parts is not None and parts.lids == 1.0
    assert on.parts(None, None).lids == parts.lids  # no face: the lids are held, as the landmarks are
    target = on.target(blink, None)
    shut = on.output([target], [None], [parts])[0]
    plain = off.output([target], [None], [None])[0]
    eyes = np.zeros(shut.shape[:2], bool)
    for first in (36, 42):
        (x0, y0), (x1, y1) = target[first:first + 6].min(0), target[first:first + 6].max(0)
        eyes[int(y0) - 40:int(y1) + 10, int(x0) - 10:int(x1) + 10] = True
    assert not np.array_equal(shut[eyes], plain[eyes])
    assert np.array_equal(shut[~eyes], plain[~eyes])
