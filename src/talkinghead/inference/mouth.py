"""The driver's mouth interior, moved into a face whose photo shows less of it.

A warp can only move the photo's own pixels: a photo with closed lips has no teeth and no dark of the mouth to move,
so when the driver opens wider than the photo, the lips are stretched over the gap (and the model, trained with
reconstruction losses, does not paint the inside either: ``MODEL_CARD.md``, "Known limits"). The driving video
shows what is inside its own mouth for that very expression (teeth in a grin, the dark of an "o"), so, as
"Bringing Portraits to Life" (Averbuch-Elor et al., 2017) does, that interior is moved onto the output's inner-lip
polygon by an affine map fitted on the lips, lit like the photo and partly coloured like it (:func:`relight`: from
the two faces' cheek colours), and faded in as the target's mouth opens beyond the widest of the source photos'.

:class:`DriverMouth` keeps only the pixels around the driver's lips, so a look-ahead over seconds of a 4K clip
stays small.

A landmark track (``speak``) has no driving frames: its mouth is a donor's (:func:`example_mouth`), whose upper
teeth hang from the target's upper lip at their own size, only their edges showing, over a dark cavity
(:func:`teeth_and_cavity`), so a wider opening shows more of the dark, not taller teeth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from talkinghead.faces.measures import interocular, mouth_opening, similarity
from talkinghead.inference.compose import polygon_mask

INNER = np.arange(60, 68)
"""Inner-lip landmarks (iBUG 68): 60 and 64 are the mouth's inner corners."""
OUTER = np.arange(48, 60)
CHEEKS = [1, 2, 3, 31, 35, 13, 14, 15, 29]
"""Landmarks whose hull covers the cheeks and the nose below the eyes (the skin whose colour is matched)."""
FADE = (0.01, 0.06)
"""The interior fades in from an opening this much wider than the source's (inter-ocular distances) to fully in."""
CAST = 0.5
"""How much of the two skins' difference in hue :func:`relight` passes on to the mouth (their difference in
brightness passes in full). Skin hue is the person's (or a painting's pigment) more than the light's: passed in full,
a varnished painting's yellow skin against a pink-skinned driver turned white teeth lime green (B/G 0.54)."""
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
UPPER = [60, 61, 62, 63, 64]
"""The inner corners and the upper inner lip: where a donor's upper teeth hang from."""
CAVITY = (80, 36, 36)
"""The mouth's cavity next to the lips, in the donor's light (RGB), for a donor that shows only teeth."""
CAVITY_DEEP = (34, 12, 14)
"""The cavity further in."""
CAVITY_DEPTH = 0.03
"""How far in (inter-ocular distances) the cavity reaches its darkest."""
TEETH_SHOW = 0.05
"""How much of a donor's upper teeth shows below the upper lip (inter-ocular distances): their edges, as in speech,
not the whole of a smile's."""
KNEE = 200.0
"""A donor's pixels relit brighter than this (0-255) are compressed towards 255 instead of clipped: relit for a
bright photo (a black-and-white portrait's white skin) her teeth would otherwise turn a flat white."""
TEETH_LUMA = (120.0, 170.0)
"""The donor's pixels inside its inner lips count as teeth from this brightness (0-255) to fully at the second."""


def cheek_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median RGB ``(3,) float32`` (0-255) of the cheeks and nose: between the jaw line and the nose, below the
    eyes."""
    pts = np.round(landmarks[CHEEKS]).astype(np.int32)
    h, w = image.shape[:2]
    x0, y0 = np.clip(pts.min(0), 0, [w - 1, h - 1])
    x1, y1 = np.clip(pts.max(0) + 1, [x0 + 1, y0 + 1], [w, h])
    region = image[y0:y1, x0:x1]
    mask = np.zeros(region.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts - [x0, y0]), 1)
    values = region[mask > 0] if mask.any() else region.reshape(-1, 3)
    return np.median(values, axis=0).astype(np.float32)


@dataclass(frozen=True)
class SourceMouth:
    """What the source photos already show: their widest mouth opening, and the first one's skin colour
    (:func:`cheek_colour`)."""

    opening: float
    skin: np.ndarray

    @classmethod
    def of(cls, crops: list[np.ndarray], landmarks: list[np.ndarray]) -> SourceMouth:
        """From the sources' crops ``(S, S, 3) uint8`` and landmarks ``(68, 2)`` (crop pixels)."""
        return cls(float(max(mouth_opening(np.stack(landmarks)))), cheek_colour(crops[0], landmarks[0]))


@dataclass(frozen=True)
class DriverMouth:
    """A driving frame's mouth: the frame's pixels around the lips (at the frame's own resolution), the landmarks
    in that patch's pixels, and the face's skin colour."""

    patch: np.ndarray
    landmarks: np.ndarray
    skin: np.ndarray
    teeth: np.ndarray | None = None
    """For a donor mouth (:func:`example_mouth`), ``(h, w) float32`` in [0, 1] over ``patch``: its upper teeth.
    Given, :func:`insert_mouth` hangs them from the target's upper inner lip at their own size over a dark cavity
    (:func:`teeth_and_cavity`) instead of stretching the donor's opening onto the target's."""

    @classmethod
    def of(cls, frame: np.ndarray, landmarks: np.ndarray) -> DriverMouth:
        """From a driving frame ``(H, W, 3) uint8`` and its landmarks ``(68, 2)`` (frame pixels)."""
        lips = landmarks[OUTER]
        pad = 0.3 * float(np.ptp(lips[:, 0])) + 2.0
        h, w = frame.shape[:2]
        x0, y0 = np.clip(np.floor(lips.min(0) - pad), 0, [w - 1, h - 1]).astype(int)
        x1, y1 = np.clip(np.ceil(lips.max(0) + pad), [x0 + 1, y0 + 1], [w, h]).astype(int)
        patch = np.ascontiguousarray(frame[y0:y1, x0:x1])
        return cls(patch, (landmarks - [x0, y0]).astype(np.float32), cheek_colour(frame, landmarks))


def _saturation(rgb: np.ndarray) -> float:
    return float((rgb.max() - rgb.min()) / max(float(rgb.max()), 1.0))


def relight(rgb: np.ndarray, driver_skin: np.ndarray, photo_skin: np.ndarray) -> np.ndarray:
    """The driver's pixels ``(h, w, 3) uint8`` as the photo would show them → float32 RGB 0-255: scaled by the
    ratio of the two skins' brightness (an exposure match: a dark mouth stays dark in any light) and, per channel,
    by :data:`CAST` of the ratio of their hues (a partial white balance), then the colour scaled towards grey by how
    much less colourful the photo's skin is than the driver's (a black-and-white photo gets a grey mouth)."""
    photo = np.asarray(photo_skin, np.float32)
    driver = np.maximum(np.asarray(driver_skin, np.float32), 1.0)
    bright = float(photo @ LUMA) / max(float(driver @ LUMA), 1.0)
    hue = np.clip(photo / driver / max(bright, 1e-3), 0.1, 10.0)
    out = rgb.astype(np.float32) * np.clip(bright * hue ** np.float32(CAST), 0.3, 3.0).astype(np.float32)
    keep = float(np.clip(_saturation(photo_skin) / max(_saturation(driver_skin), 0.05), 0.0, 1.0))
    if keep < 1.0:
        luma = out @ LUMA
        out = luma[..., None] + (out - luma[..., None]) * np.float32(keep)
    return out


def insert_mouth(face: np.ndarray, target: np.ndarray, driver: DriverMouth, source: SourceMouth) -> np.ndarray:
    """``face`` ``(S, S, 3) uint8`` with the driver's mouth interior inside ``target``'s inner lips (``(68, 2)``,
    the face's pixels), as far as the target opens beyond ``source.opening``; the face itself when it does not."""
    target = np.asarray(target, np.float32)
    amount = (float(mouth_opening(target)) - source.opening - FADE[0]) / (FADE[1] - FADE[0])
    if not np.isfinite(amount) or amount <= 0:
        return face
    amount = min(amount, 1.0)
    s = face.shape[0]
    if driver.teeth is not None:
        # a similarity fitted on the upper inner lip and the inner corners: the teeth hang from the lip at their
        # own size, however far the mouth opens
        mat = similarity(driver.landmarks[UPPER], target[UPPER])
        # then up, so that only their lowest TEETH_SHOW show below the lip (the lip covers the rest, as in speech)
        scale = float(np.hypot(*mat[:, 0]))
        hide = _teeth_height(driver) * scale - TEETH_SHOW * float(interocular(target))
        mat[:, 2] -= _down(target) * max(hide, 0.0)
    else:
        # an affine map fitted (least squares) on the inner lips and the mouth's corners: what bounds the interior
        pts = [*INNER, 48, 54]
        src = np.hstack([driver.landmarks[pts].astype(np.float64), np.ones((len(pts), 1))])
        sol, *_ = np.linalg.lstsq(src, target[pts].astype(np.float64), rcond=None)
        mat = sol.T  # (2, 3)
    if not np.isfinite(mat).all():
        return face
    inner = target[INNER]
    lo, hi = np.floor(inner.min(0) - 4).astype(int).clip(0, s), np.ceil(inner.max(0) + 4).astype(int).clip(0, s)
    if np.any(hi - lo < 2):
        return face
    # only the mouth's box is warped and blended
    shift = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]]], np.float64)
    mat = shift @ np.vstack([mat, [0, 0, 1]])
    w, h = int(hi[0] - lo[0]), int(hi[1] - lo[1])
    moved = cv2.warpAffine(driver.patch, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the polygon drawn a little inside the inner lips, so the driver's own lip edge stays out
    centre = inner.mean(0)
    shrunk = centre + (inner - centre) * 0.92 - lo
    soften = 0.012 * float(interocular(target))
    inside = polygon_mask(shrunk, max(w, h), soften)[:h, :w]
    if driver.teeth is not None:
        teeth = cv2.warpAffine(driver.teeth, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        moved = teeth_and_cavity(moved, teeth, inside, float(interocular(target)))
    moved = relight(moved, driver.skin, source.skin)
    if driver.teeth is not None:
        moved = soft_clip(moved)
    mask = inside[..., None] * np.float32(amount)
    region = face[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32)
    out = face.copy()
    out[lo[1] : hi[1], lo[0] : hi[0]] = np.clip(region * (1 - mask) + moved * mask + 0.5, 0, 255).astype(np.uint8)
    return out


def _down(lmk: np.ndarray) -> np.ndarray:
    """The unit vector across the mouth, from the upper lip towards the chin (perpendicular to the line between
    the inner corners)."""
    corners = lmk[64].astype(np.float64) - lmk[60]
    return np.array([-corners[1], corners[0]]) / max(float(np.hypot(*corners)), 1e-6)


def _teeth_height(donor: DriverMouth) -> float:
    """How far (the donor's pixels) its teeth reach below its upper inner lip's middle."""
    ys, xs = np.nonzero(donor.teeth > 0.5)  # type: ignore[operator]
    if not len(ys):
        return 0.0
    return float(max(((np.stack([xs, ys], 1) - donor.landmarks[62].astype(np.float64)) @ _down(donor.landmarks)
                      ).max(), 0.0))


def soft_clip(rgb: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """``rgb`` (float, 0-255 and beyond) with values over ``knee`` compressed smoothly into ``(knee, 255)``."""
    room = 255.0 - knee
    over = np.maximum(rgb - knee, 0.0)
    return np.where(rgb > knee, knee + room * (1.0 - np.exp(-over / room)), rgb).astype(np.float32)


def teeth_and_cavity(moved: np.ndarray, teeth: np.ndarray, inside: np.ndarray, iod: float) -> np.ndarray:
    """A donor's teeth ``moved`` ``(h, w, 3)`` where ``teeth`` ``(h, w)`` says, over a dark cavity elsewhere inside
    the inner lips (``inside``): :data:`CAVITY` at the lips, :data:`CAVITY_DEEP` from :data:`CAVITY_DEPTH`
    inter-ocular distances in. ``float32`` RGB in the donor's light (:func:`relight` follows)."""
    depth = cv2.distanceTransform((inside > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    t = np.clip(depth / max(CAVITY_DEPTH * iod, 1e-3), 0.0, 1.0)[..., None]
    cavity = np.float32(CAVITY) * (1 - t) + np.float32(CAVITY_DEEP) * t
    k = np.clip(teeth, 0.0, 1.0)[..., None]
    return moved.astype(np.float32) * k + cavity * (1 - k)


@cache
def example_mouth() -> DriverMouth:
    """The mouth interior a landmark track shows (``speak``: no driving video to take one from): the bundled
    astronaut photo's upper teeth (public domain: a smile showing them), hung from the upper lip over a dark cavity
    (:func:`teeth_and_cavity`). Her teeth are the bright pixels inside her inner lips (the pink of her lower lip
    between them left out)."""
    from talkinghead.data.examples import astronaut
    from talkinghead.faces.landmarks import detect_landmarks

    image = astronaut()
    mouth = DriverMouth.of(image, detect_landmarks(image))
    h, w = mouth.patch.shape[:2]
    inside = polygon_mask(mouth.landmarks[INNER], (h, w), 0.5)
    luma = mouth.patch.astype(np.float32) @ LUMA
    bright = np.clip((luma - TEETH_LUMA[0]) / (TEETH_LUMA[1] - TEETH_LUMA[0]), 0.0, 1.0)
    teeth = cv2.GaussianBlur((inside * bright).astype(np.float32), (0, 0), 0.7)
    return dataclasses.replace(mouth, teeth=teeth)
