"""Turning generated crops into output frames: upscaling or composing at the output's resolution, paste-back into
the source photo, side-by-side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from talkinghead.faces.crop import CropBox, crop_image

if TYPE_CHECKING:
    from talkinghead.inference.backends import RenderLayers


def upscale(crop: np.ndarray, size: int) -> np.ndarray:
    if crop.shape[0] == size:
        return crop
    interp = cv2.INTER_CUBIC if size > crop.shape[0] else cv2.INTER_AREA
    return cv2.resize(crop, (size, size), interpolation=interp)


def compose_layers(layers: RenderLayers, sources: list[np.ndarray]) -> list[np.ndarray]:
    """The warp generator's faces composed again at the size of ``sources`` (the person's source crops, ``(H, H, 3)
    uint8``, cut at H² from their photos): the same sum as the model's, with the photos' own pixels warped along the
    same grid, so what comes from the sources is as sharp as the photos; only the weights, the flow and the
    generated pixels (eyes and mouth) are upsampled (bilinear) from the model's resolution. → ``(H, H, 3) uint8``
    per target."""
    h = sources[0].shape[0]
    n, k = layers.sources.shape
    s = layers.weights.shape[-1]
    up = lambda a: cv2.resize(a, (h, h), interpolation=cv2.INTER_LINEAR)  # noqa: E731  (half-pixel centres, as the model's resizes)
    generated = np.clip((layers.generated + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    # the model resizes the grid to its resolution (bilinear), then samples with align_corners=False; the map to
    # pixel coordinates is affine, so it is applied before the (bilinear) upsampling, on fewer pixels
    grids = np.stack([cv2.resize(g, (s, s), interpolation=cv2.INTER_LINEAR)
                      for g in layers.grid.reshape(n * k, *layers.grid.shape[2:])])
    grids = ((grids + 1.0) * (h / 2.0) - 0.5).reshape(n, k, s, s, 2)
    out = []
    for i in range(n):
        w_warp, w_static, w_gen = (up(np.ascontiguousarray(layers.weights[i, c])) for c in range(3))
        w_src = up(layers.weights[i, 0] + layers.weights[i, 1])
        warped: np.ndarray | None = None
        static: np.ndarray | None = None
        for j, idx in enumerate(layers.sources[i]):
            m1, m2 = cv2.convertMaps(up(grids[i, j]), None, cv2.CV_16SC2)  # fixed point: remap's fast path
            px = cv2.remap(sources[idx], m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            if k == 1:
                warped, static = px, sources[idx]
            else:  # the sources by their shares
                c = up(cv2.resize(layers.conf[i, j], (s, s), interpolation=cv2.INTER_LINEAR))[..., None]
                warped = px * c + (0 if warped is None else warped)
                static = sources[idx] * c + (0 if static is None else static)
        if k > 1:
            warped = np.clip(warped + 0.5, 0, 255).astype(np.uint8)  # type: ignore[operator]
            static = np.clip(static + 0.5, 0, 255).astype(np.uint8)  # type: ignore[operator]
        # blendLinear divides by the two weights' sum: the source paths first, then those against the generated
        mixed = cv2.blendLinear(warped, static, w_warp, w_static)
        out.append(cv2.blendLinear(mixed, up(generated[i]), w_src, w_gen))
    return out


def polygon_mask(points: np.ndarray, shape: int | tuple[int, int], soften: float) -> np.ndarray:
    """Anti-aliased filled polygon (``points`` in pixels) on a ``shape`` (``size`` or ``(h, w)``) ``float32``
    canvas in [0, 1], drawn at 4x and area-averaged, its edge blurred by ``soften`` pixels (at least 0.5)."""
    h, w = (shape, shape) if isinstance(shape, int) else shape
    sup = 4
    mask = np.zeros((h * sup, w * sup), np.uint8)
    cv2.fillPoly(mask, [np.round((points + 0.5) * sup - 0.5).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return cv2.GaussianBlur(m, (0, 0), max(0.5, soften))


def face_mask(landmarks: np.ndarray, size: int, feather: float = 0.06) -> np.ndarray:
    """Soft mask ``(size, size) float32`` in [0, 1] covering the face and forehead of crop-pixel ``landmarks``
    (any number of landmark sets stacked: the union is covered), feathered by ``feather`` x size."""
    pts = np.asarray(landmarks, np.float32).reshape(-1, 68, 2)
    hulls = []
    for lmk in pts:
        brows = lmk[17:27].copy()
        face_h = lmk[8, 1] - lmk[17:27, 1].mean()
        brows[:, 1] -= 0.45 * face_h  # forehead
        hulls.append(np.concatenate([lmk[:17], brows]))
    hull = cv2.convexHull(np.concatenate(hulls).astype(np.float32))
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0, lineType=cv2.LINE_AA)
    k = max(3, int(round(feather * size)) | 1)
    mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=feather * size / 2)


def crop_mask(size: int, feather: float = 0.08) -> np.ndarray:
    """Soft mask ``(size, size) float32``: 1 inside the crop, falling to 0 over ``feather`` x size at its border."""
    ramp = np.clip((np.arange(size, dtype=np.float32) + 0.5) / max(1.0, feather * size), 0.0, 1.0)
    edge = np.minimum(ramp, ramp[::-1])
    return np.minimum(edge[:, None], edge[None, :])


def paste_back(image: np.ndarray, generated: np.ndarray, box: CropBox, mask: np.ndarray) -> np.ndarray:
    """Blend a generated crop (any size; ``mask`` the same size, or already ``box.side``²) into ``image`` at
    ``box``. For many frames into one photo with one mask, :class:`Paster` resizes the mask once."""
    side = _side(box)
    m = mask if mask.shape[0] == side else cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR)
    return _blend(image, generated, box, m.astype(np.float32, copy=False), 1.0 - m)


class Paster:
    """Pastes generated crops into one photo at one box; a mask given here (the warp generator's, the same for
    every frame) is resized once: at 1920² that is most of the paste's time."""

    def __init__(self, image: np.ndarray, box: CropBox, mask: np.ndarray | None = None) -> None:
        self.image, self.box = image, box
        self._fixed: tuple[np.ndarray, np.ndarray] | None = None
        if mask is not None:
            side = _side(box)
            m = cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            self._fixed = (m, 1.0 - m)

    def __call__(self, generated: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if mask is None:
            if self._fixed is None:
                raise ValueError("this Paster has no mask of its own: pass one")
            return _blend(self.image, generated, self.box, *self._fixed)
        return paste_back(self.image, generated, self.box, mask)


def _side(box: CropBox) -> int:
    return max(1, int(round(box.side)))


def _blend(image: np.ndarray, generated: np.ndarray, box: CropBox, m: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """``image`` with ``generated`` (resized to the box) blended in by the weights ``m`` (``inv`` = 1 - ``m``),
    both ``box.side``² float32; the parts of the box outside the image are left out."""
    h, w = image.shape[:2]
    x0, y0, side = int(round(box.x0)), int(round(box.y0)), _side(box)
    out = image.copy()
    ys, xs = slice(max(0, y0), min(h, y0 + side)), slice(max(0, x0), min(w, x0 + side))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return out
    gen = generated if generated.shape[0] == side else cv2.resize(generated, (side, side), interpolation=cv2.INTER_CUBIC)
    gy, gx = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
    part = lambda a: np.ascontiguousarray(a[gy, gx])  # noqa: E731
    out[ys, xs] = cv2.blendLinear(part(gen), np.ascontiguousarray(out[ys, xs]), part(m), part(inv))
    return out


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two frames next to each other at the right frame's height."""
    h = right.shape[0]
    if left.shape[0] != h:
        scale = h / left.shape[0]
        left = cv2.resize(left, (max(1, int(round(left.shape[1] * scale))), h), interpolation=cv2.INTER_AREA)
    return np.concatenate([left, right], axis=1)


def driver_view(frame: np.ndarray, box: CropBox | None, size: int) -> np.ndarray:
    """The driving frame's face region (its first crop box), for side-by-side output."""
    if box is None:
        return upscale(frame, size) if frame.shape[0] == frame.shape[1] else cv2.resize(frame, (size, size))
    return crop_image(frame, box, size)
