"""The driver's mouth interior moved into an output whose photo shows less of it (inference/mouth.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from talkinghead.assets import driving_motion
from talkinghead.faces.measures import mouth_opening
from talkinghead.inference.mouth import INNER, OUTER, DriverMouth, SourceMouth, cheek_colour, insert_mouth


def _shapes(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The bundled motion's most closed and most open mouths (real landmarks), fitted into a ``size``² face."""
    lmk, _ = driving_motion()
    op = mouth_opening(lmk)
    closed, opened = lmk[int(np.argmin(op))], lmk[int(np.argmax(op))]
    lo, hi = closed.min(0), closed.max(0)
    scale = 0.6 * size / float((hi - lo).max())

    def place(p: np.ndarray) -> np.ndarray:
        return ((p - closed.mean(0)) * scale + size / 2).astype(np.float32)

    return place(closed), place(opened)


def _driver(opened: np.ndarray, inside: int | tuple[int, int, int], cheeks: int | tuple[int, int, int],
            size: int = 256) -> DriverMouth:
    """A driving frame: skin of colour ``cheeks``, lips, and a mouth interior of colour ``inside``."""
    frame = np.full((size, size, 3), cheeks, np.uint8)
    cv2.fillPoly(frame, [np.round(opened[OUTER]).astype(np.int32)], (150, 60, 60))
    cv2.fillPoly(frame, [np.round(opened[INNER]).astype(np.int32)], inside if isinstance(inside, tuple) else (inside,) * 3)
    return DriverMouth.of(frame, opened)


def _photo(closed: np.ndarray, skin: tuple[int, int, int], size: int = 256) -> SourceMouth:
    """What a photo with the ``closed`` mouth and skin of colour ``skin`` shows."""
    face = np.full((size, size, 3), skin, np.uint8)
    return SourceMouth.of([face], [closed])


def _opened_on(src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bundled motion's open mouth (as :func:`_shapes` places it) and the photo's landmarks ``src`` with that
    mouth's lips moved onto its face."""
    closed, opened = _shapes()
    fit = cv2.estimateAffinePartial2D(closed[:48], src[:48])[0]
    target = src.copy()
    target[48:] = opened[48:] @ fit[:, :2].T + fit[:, 2]
    return opened, target


def _inner_core(target: np.ndarray, size: int = 256) -> np.ndarray:
    centre = target[INNER].mean(0)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(centre + (target[INNER] - centre) * 0.5).astype(np.int32)], 1)
    return mask.astype(bool)


def test_an_opening_beyond_the_photo_shows_the_drivers_interior_and_nothing_else_changes() -> None:
    closed, opened = _shapes()
    assert mouth_opening(opened) - mouth_opening(closed) > 0.1
    face = np.full((256, 256, 3), 170, np.uint8)  # the stretched lips: no dark anywhere
    out = insert_mouth(face, opened, _driver(opened, inside=20, cheeks=170), _photo(closed, (170, 170, 170)))
    core = _inner_core(opened)
    assert out[core].mean() < 40  # the dark of the driver's mouth
    lo = np.floor(opened[INNER].min(0) - 6).astype(int)
    hi = np.ceil(opened[INNER].max(0) + 6).astype(int)
    outside = np.ones((256, 256), bool)
    outside[lo[1] : hi[1], lo[0] : hi[0]] = False
    assert np.array_equal(out[outside], face[outside])  # only the opening is touched


def test_no_wider_than_the_photo_leaves_the_face_as_it_is() -> None:
    closed, opened = _shapes()
    face = np.full((256, 256, 3), 170, np.uint8)
    driver = _driver(opened, inside=20, cheeks=170)
    skin = cheek_colour(face, opened)
    same = SourceMouth(float(mouth_opening(opened)), skin)  # the photo's mouth is as open as the target's
    assert np.array_equal(insert_mouth(face, opened, driver, same), face)
    assert np.array_equal(insert_mouth(face, closed, driver, SourceMouth(float(mouth_opening(closed)), skin)), face)


def test_the_interior_is_lit_like_the_photo() -> None:
    """Teeth of grey 200 in a driver's face of grey 100, shown in a photo of grey 50: about grey 100."""
    closed, opened = _shapes()
    face = np.full((256, 256, 3), 60, np.uint8)
    out = insert_mouth(face, opened, _driver(opened, inside=200, cheeks=100), _photo(closed, (50, 50, 50)))
    assert abs(float(out[_inner_core(opened)].mean()) - 100.0) < 8


def test_a_black_and_white_photo_gets_a_grey_mouth_and_a_colour_one_keeps_the_colour() -> None:
    closed, opened = _shapes()
    face = np.full((256, 256, 3), 120, np.uint8)
    driver = _driver(opened, inside=(170, 60, 60), cheeks=(200, 150, 120))  # a red tongue in a colour video
    core = _inner_core(opened)
    grey = insert_mouth(face, opened, driver, _photo(closed, (150, 150, 150)))[core].astype(float)
    assert np.abs(grey - grey.mean(1, keepdims=True)).max() < 6  # R = G = B
    colour = insert_mouth(face, opened, driver, _photo(closed, (200, 150, 120)))[core].astype(float)
    assert (colour[:, 0] - colour[:, 1]).mean() > 60  # the same skin: the tongue stays red


def test_teeth_keep_their_white_in_a_yellow_painting() -> None:
    """A varnished painting's yellow skin (the Mona Lisa's cheeks are about (180, 150, 70)) against a pink-skinned
    driver: white teeth are lit like the painting but not turned lime green, as a full per-channel white balance
    on the skins did (B/G 0.54)."""
    closed, opened = _shapes()
    face = np.full((256, 256, 3), 120, np.uint8)
    driver = _driver(opened, inside=(230, 230, 230), cheeks=(200, 150, 130))
    teeth = insert_mouth(face, opened, driver, _photo(closed, (180, 150, 70)))[_inner_core(opened)].astype(float)
    r, g, b = teeth.mean(0)
    assert b / g > 0.7 and abs(r - g) < 20  # pale, warm at most
    assert 190 < g < 240  # as bright as the painting lights them


def test_frame_step_inserts_the_mouth_at_the_outputs_size(micro_warp_model: Path, astronaut_png: Path) -> None:
    """The animate path: with the option on, an opened target shows the driver's interior in the written face
    (the output at another size than the crop, so the landmarks are scaled); with it off, or without a driving
    frame, the face is the model's."""
    from talkinghead.inference.animate import AnimateOptions, Animator, FrameStep

    anim = Animator(micro_warp_model, device="cpu")
    anim.set_source([astronaut_png], progress=False)
    src = anim.sources[0].landmarks
    opened, target = _opened_on(src)
    frame = np.full((256, 256, 3), 170, np.uint8)
    cv2.fillPoly(frame, [np.round(opened[INNER]).astype(np.int32)], (10, 10, 10))
    on = FrameStep(anim, AnimateOptions(progress=False, output_size=384, driver_gaze=False))
    parts = on.parts(opened, frame)
    assert parts is not None and parts.mouth is not None
    assert on.parts(None, frame).mouth is parts.mouth  # a frame without a face keeps the last mouth
    with_mouth = on.output([target], [None], [parts])[0]
    plain = on.output([target], [None], [None])[0]
    assert with_mouth.shape == (384, 384, 3)
    core = _inner_core((target + 0.5) * 1.5 - 0.5, 384)
    assert with_mouth[core].mean() < plain[core].mean() - 40
    assert np.array_equal(with_mouth[~cv2.dilate(core.astype(np.uint8), np.ones((41, 41))).astype(bool)],
                          plain[~cv2.dilate(core.astype(np.uint8), np.ones((41, 41))).astype(bool)])
    off = FrameStep(anim, AnimateOptions(progress=False, output_size=384, driver_mouth=False, driver_gaze=False,
                                         full_blinks=False))
    assert off.parts(opened, frame) is None


def test_a_landmark_track_shows_the_mouth_it_is_given(micro_warp_model: Path, astronaut_png: Path,
                                                      tmp_path: Path) -> None:
    """``speak``'s path: a landmark track has no frames to take a mouth interior from; the one it is given
    (``speak``: the bundled astronaut's, :func:`example_mouth`) fills the opening where the track opens wider than
    the photo, and nothing else changes."""
    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.inference.mouth import example_mouth
    from talkinghead.io.images import read_image

    anim = Animator(micro_warp_model, device="cpu")
    anim.set_source([astronaut_png], progress=False)
    src = anim.sources[0].landmarks
    opened, target = _opened_on(src)
    track = np.stack([src, target])
    out = {}
    for name, mouth in (("on", _driver(opened, 10, 170)), ("off", None)):
        opt = AnimateOptions(progress=False, watermark=False, credentials=False, driver_gaze=False,
                             frames_dir=tmp_path / name)
        anim.animate((track, 25.0), tmp_path / f"{name}.mp4", opt, track_mouth=mouth)
        out[name] = [read_image(p).astype(int) for p in sorted((tmp_path / name).glob("*.png"))]
    core = _inner_core(target)
    assert out["on"][1][core].mean() < out["off"][1][core].mean() - 40  # the given dark interior
    assert np.abs(out["on"][0] - out["off"][0]).max() == 0  # the photo's own mouth: nothing inserted
    assert np.abs(out["on"][1] - out["off"][1])[~cv2.dilate(core.astype(np.uint8), np.ones((41, 41))).astype(bool)
                                                 ].max() == 0
    donor = example_mouth()
    assert mouth_opening(donor.landmarks) > 0.1 and donor.patch.size > 0  # her smile shows the teeth


@pytest.mark.parametrize("size", [(40, 30), (300, 500)])
def test_driver_mouth_near_the_frames_border(size: tuple[int, int]) -> None:
    """A mouth at or past the frame's edge gives a (clipped) patch, never an error."""
    _, opened = _shapes()
    frame = np.full((*size, 3), 120, np.uint8)
    d = DriverMouth.of(frame, opened)
    assert d.patch.ndim == 3 and min(d.patch.shape[:2]) >= 1


def test_a_donor_mouth_shows_its_teeth_at_their_own_size_over_a_dark_cavity() -> None:
    """``speak``'s mouth (the astronaut's smile, :func:`example_mouth`): her upper teeth hang from the target's upper
    lip, only their edges showing, and the rest of the opening is dark; opened wider, the teeth keep their height
    and the dark grows (stretched onto the opening, a smile's teeth filled it: a grin, not speech)."""
    from talkinghead.faces.measures import interocular
    from talkinghead.inference.mouth import TEETH_SHOW, example_mouth

    closed, opened = _shapes()
    face = np.full((256, 256, 3), 170, np.uint8)
    photo = _photo(closed, (170, 170, 170))
    donor = example_mouth()
    runs = []
    for extra in (0.0, 8.0):
        target = opened.copy()
        target[[56, 57, 58, 65, 66, 67], 1] += extra  # the lower lip further down
        out = insert_mouth(face, target, donor, photo)
        x = int(round(target[[62, 66], 0].mean()))
        top, bottom = int(np.ceil(target[62, 1])) + 1, int(np.floor(target[66, 1])) - 1
        column = out[top:bottom, x].astype(float).mean(1)  # grey: the photo's skin is
        teeth, dark = int((column > 140).sum()), int((column < 80).sum())
        assert column[:2].mean() > 150, column  # teeth right below the upper lip (about as light as the skin)
        assert column[-3:].mean() < 80, column  # the cavity above the lower lip
        assert teeth <= TEETH_SHOW * float(interocular(target)) + 2, column  # the edges, not the whole tooth
        runs.append((teeth, dark))
    (teeth0, dark0), (teeth1, dark1) = runs
    assert abs(teeth1 - teeth0) <= 1 and dark1 >= dark0 + 6, runs
