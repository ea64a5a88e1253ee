"""Pasting back into a photo larger than the model's 256²: composing the face at the photo's size from its own pixels
(``full_resolution``, the default) against upscaling the model's crop (``--no-full-resolution``). Prints figures;
asserts nothing.

Each portrait (the first ``--count`` photos of at least ``--min-side`` pixels under ``--portraits``, sorted by
name) is animated with paste-back by the bundled demo motion (``talkinghead demo``'s GRID track, relative motion),
both ways, and the written H.264 is read back. Per output frame (every 5th):

- **sharpness**: the variance of the Laplacian inside the face (the hull of landmarks detected on the frame)
  divided by the photo's (1 = as sharp as the photo);
- **identity**: the distance between dlib's 128-d descriptors of the frame and of the photo (under 0.6 = the same
  person);
- **pipeline speed**: frames per second of the whole ``Animator.animate`` call (track → generate → compose →
  paste-back → watermark → H.264).

    .venv/bin/python benchmarks/full_resolution.py [--portraits ../shared/corpus/images/portraits] [--count 8]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from demo_quality import face_sharpness  # this folder (run as a script)

from talkinghead.assets import driving_motion
from talkinghead.evaluation.metrics import detect_face_landmarks, identity_embedding
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.io import read_image, read_video

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def portraits(root: Path, min_side: int, count: int) -> list[Path]:
    found = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.parent.name.startswith("MULTI"):
            img = cv2.imread(str(p))
            if img is not None and min(img.shape[:2]) >= min_side:
                found.append(p)
        if len(found) == count:
            break
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--portraits", default=str(Path(__file__).resolve().parents[2] / "shared/corpus/images/portraits"))
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--min-side", type=int, default=500)
    ap.add_argument("--frames", type=int, default=100, help="driving frames (of the bundled motion)")
    ap.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    args = ap.parse_args()
    track, fps = driving_motion()
    track = track[: args.frames]
    anim = Animator(device="cpu", backend=args.backend)
    rows: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    print(f"{'portrait':42s} {'mode':9s} {'sharpness':>9s} {'identity':>8s} {'fps':>5s}")
    for path in portraits(Path(args.portraits), args.min_side, args.count):
        photo = read_image(path)
        photo_lmk = detect_face_landmarks(photo)
        photo_emb = identity_embedding(photo, photo_lmk)
        if photo_lmk is None or photo_emb is None:
            continue
        photo_sharp = face_sharpness(photo, photo_lmk)
        anim.set_source([photo], progress=False)
        for full in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out.mp4"
                res = anim.animate((track, fps), out, AnimateOptions(paste_back=True, full_resolution=full,
                                                                    progress=False, credentials=False))
                frames, _ = read_video(out)
            sharp, dist = [], []
            for f in frames[::5]:
                lmk = detect_face_landmarks(f)
                if lmk is None:
                    continue
                sharp.append(face_sharpness(f, lmk) / photo_sharp)
                e = identity_embedding(f, lmk)
                dist.append(np.linalg.norm(e - photo_emb) if e is not None else np.inf)
            row = (float(np.median(sharp)), float(np.median(dist)), res.frames_per_second)
            rows[full].append(row)
            name = f"{path.parent.name}/{path.name}"[-42:]
            print(f"{name:42s} {'full' if full else 'upscaled':9s} {row[0]:9.2f} {row[1]:8.3f} {row[2]:5.1f}  "
                  f"({photo.shape[1]}x{photo.shape[0]})")
    for full in (False, True):
        a = np.array(rows[full])
        print(f"mean over {len(a)} portraits, {'full resolution' if full else 'upscaled 256²'}: face sharpness vs the "
              f"photo {a[:, 0].mean():.2f}, identity distance {a[:, 1].mean():.3f}, pipeline {a[:, 2].mean():.1f} "
              f"frames/s")


if __name__ == "__main__":
    main()
