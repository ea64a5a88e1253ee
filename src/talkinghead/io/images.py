"""Image I/O: any common format to ``(H, W, 3) uint8`` RGB, whatever its depth, channels or orientation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from talkinghead.errors import InputError
from talkinghead.io.atomic import atomic_path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"})

_EXIF_ORIENTATION = 0x0112
# EXIF orientation → (number of 90° counter-clockwise rotations, flip left-right first)
_ORIENT = {2: (0, True), 3: (2, False), 4: (2, True), 5: (1, True), 6: (3, False), 7: (3, True), 8: (1, False)}


def to_rgb8(img: np.ndarray, background: int = 255) -> np.ndarray:
    """Convert a decoded array (gray, gray+alpha, RGB, RGBA; 8/16-bit or float) to RGB uint8.

    Transparent pixels are composited onto a plain ``background`` grey level.
    """
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels in (2, 4):
        alpha = img[:, :, -1:].astype(np.float32) / 255.0
        color = img[:, :, :-1].astype(np.float32)
        img = (color * alpha + background * (1.0 - alpha) + 0.5).astype(np.uint8)
        channels -= 1
    if channels == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _exif_orientation(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except (OSError, UnidentifiedImageError, ValueError):
        return 1


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3) uint8`` RGB (EXIF orientation applied)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"cannot read image {path}: {'is a directory' if p.is_dir() else 'no such file'}")
    data = np.fromfile(p, dtype=np.uint8)
    if data.size == 0:
        raise InputError(f"cannot read image {path}: file is empty (0 bytes)")
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is not None:
        if arr.ndim == 3:  # OpenCV decodes to BGR(A)
            arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]] if arr.shape[2] in (3, 4) else arr
        img = to_rgb8(arr)
    else:  # formats OpenCV lacks (GIF, some TIFF variants): Pillow
        try:
            with Image.open(p) as im:
                im.seek(0)
                mode = "RGBA" if im.mode in ("RGBA", "LA", "PA", "P") else "RGB"
                img = to_rgb8(np.asarray(im.convert(mode)))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise InputError(f"cannot read image {path}: not a readable image ({exc.__class__.__name__})") from None
    orient = _exif_orientation(p)
    if orient in _ORIENT:
        k, flip = _ORIENT[orient]
        if flip:
            img = img[:, ::-1]
        img = np.ascontiguousarray(np.rot90(img, k))
    return img


def write_image(path: str | Path, img: np.ndarray, quality: int = 95,
                finalize: Callable[[Path, Path], None] | None = None) -> Path:
    """Write an RGB uint8 image atomically; the format follows the extension.

    ``finalize(tmp, path)``, if given, is called on the written temporary file just before it is renamed onto
    ``path`` (e.g. to embed a signed manifest).
    """
    path = Path(path)
    ext = (path.suffix or ".png").lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img[:, :, ::-1]), params)
    if not ok:
        raise InputError(f"cannot encode image as {path.suffix!r}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
        if finalize is not None:
            finalize(tmp, path)
    return path
