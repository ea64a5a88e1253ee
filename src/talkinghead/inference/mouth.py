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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from talkinghead.faces.measures import interocular, mouth_opening
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
    moved = relight(cv2.warpAffine(driver.patch, mat, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE), driver.skin, source.skin)
    # the polygon drawn a little inside the inner lips, so the driver's own lip edge stays out
    centre = inner.mean(0)
    shrunk = centre + (inner - centre) * 0.92 - lo
    soften = 0.012 * float(interocular(target))
    mask = polygon_mask(shrunk, max(w, h), soften)[:h, :w, None] * np.float32(amount)
    region = face[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32)
    out = face.copy()
    out[lo[1] : hi[1], lo[0] : hi[0]] = np.clip(region * (1 - mask) + moved * mask + 0.5, 0, 255).astype(np.uint8)
    return out


@cache
def example_mouth() -> DriverMouth:
    """The mouth interior a landmark track shows (``speak``: no driving video to take one from): the bundled
    astronaut photo's (public domain), a smile showing the upper teeth and the dark of the mouth."""
    from talkinghead.data.examples import astronaut
    from talkinghead.faces.landmarks import detect_landmarks

    image = astronaut()
    return DriverMouth.of(image, detect_landmarks(image))
