"""What `make demo` shows, measured: does the astronaut stay herself, does her mouth follow the driver, and does
anything flicker outside her face. Prints figures; asserts nothing.

It animates exactly what ``talkinghead demo`` animates (the bundled astronaut photo, the bundled GRID motion track,
relative motion, the shipped model unless ``--model``), without the side-by-side sketch, and reads the written
video back (H.264, as a user gets it). Per output frame:

- **identity**: the distance between dlib's 128-d face-recognition descriptors of the frame and of the photo's
  crop (dlib's own rule: under 0.6 = the same person). Goal: under 0.6 in at least 95 % of frames.
- **mouth**: the mouth opening (inner-lip distance / inter-ocular distance) of landmarks *detected* on the output,
  against the same measure of the driving track: Pearson r. Goal: r >= 0.8.
- **stability outside the face** (the face = the hull of the frame's landmarks, grown by 15 %, in either frame):
  the mean absolute frame-to-frame change in grey levels (flicker), and the mean absolute difference from the
  source crop (drift). A still photo changes by 0, so any value is the model's own motion or noise.
- **sharpness**: the variance of the Laplacian inside the face (hull of the detected landmarks) divided by the
  photo's, per frame (1 = as sharp as the photo): the median, the lowest, and the share of frames under 0.5. A
  model that blurs where motion is large (it hedges by generating instead of warping) shows here, not in the
  identity or mouth figures. The same ratio over the whole crop (hair, clothes, background) too.
- the same for the ``warp`` baseline (a piecewise-affine warp of the photo to the same target landmarks),
  for scale.

    .venv/bin/python benchmarks/demo_quality.py [--model FILE] [--save-frames DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkinghead.assets import driving_motion
from talkinghead.data.examples import astronaut
from talkinghead.evaluation.baselines import piecewise_affine
from talkinghead.evaluation.metrics import detect_face_landmarks, identity_embedding
from talkinghead.faces.measures import mouth_opening
from talkinghead.inference.animate import AnimateOptions, Animator, FrameStep
from talkinghead.io import read_video, write_image


def face_mask(lmk: np.ndarray, size: int | tuple[int, int], grow: float = 1.15) -> np.ndarray:
    hull = cv2.convexHull(((lmk - lmk.mean(0)) * grow + lmk.mean(0)).astype(np.float32)).astype(np.int32)
    mask = np.zeros((size, size) if isinstance(size, int) else size, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def stability(frames: np.ndarray, lmks: list[np.ndarray | None], source: np.ndarray) -> tuple[float, float]:
    grey = frames.astype(np.float32).mean(-1)
    src = source.astype(np.float32).mean(-1)
    size = frames.shape[1]
    masks = [face_mask(l_, size) if l_ is not None else np.ones((size, size), bool) for l_ in lmks]
    flicker = [np.abs(grey[i] - grey[i - 1])[~(masks[i] | masks[i - 1])].mean() for i in range(1, len(grey))]
    drift = [np.abs(grey[i] - src)[~masks[i]].mean() for i in range(len(grey))]
    return float(np.mean(flicker)), float(np.mean(drift))


def score(name: str, frames: np.ndarray, photo_emb: np.ndarray, driving_open: np.ndarray, source: np.ndarray) -> None:
    lmks = [detect_face_landmarks(f) for f in frames]
    dist = np.array([np.linalg.norm(e - photo_emb) if (e := identity_embedding(f, l_)) is not None else np.inf
                     for f, l_ in zip(frames, lmks, strict=True)])
    found = np.array([l_ is not None for l_ in lmks])
    opening = np.array([mouth_opening(l_) if l_ is not None else np.nan for l_ in lmks])
    ok = found & np.isfinite(driving_open)
    r = float(np.corrcoef(opening[ok], driving_open[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    flicker, drift = stability(frames, lmks, source)
    sharp = np.array([face_sharpness(f, l_) for f, l_ in zip(frames, lmks, strict=True) if l_ is not None])
    sharp = sharp / face_sharpness(source, detect_face_landmarks(source))
    whole = np.array([_lap_var(f) for f in frames]) / _lap_var(source)
    print(f"{name:6s} frames {len(frames)}, face found {found.mean():.3f}; identity distance to the photo: "
          f"median {np.median(dist):.3f}, max {dist.max():.3f}, under 0.6 in {np.mean(dist < 0.6):.1%} of frames; "
          f"mouth-opening r vs driving {r:.3f} (output range {np.nanmin(opening):.3f}-{np.nanmax(opening):.3f}, "
          f"driving {np.nanmin(driving_open):.3f}-{np.nanmax(driving_open):.3f}); outside the face: "
          f"frame-to-frame change {flicker:.2f} grey levels, difference from the source {drift:.2f}; sharpness of the "
          f"face vs the photo: median {np.median(sharp):.2f}, lowest {sharp.min():.2f}, under 0.5 in "
          f"{np.mean(sharp < 0.5):.1%} of frames; of the whole crop: median {np.median(whole):.2f}, lowest "
          f"{whole.min():.2f}, under 0.5 in {np.mean(whole < 0.5):.1%}")


def _lap_var(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64), cv2.CV_64F).var())


def face_sharpness(image: np.ndarray, lmk: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image inside the landmarks' hull."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    return float(lap[face_mask(lmk, image.shape[:2], grow=1.0)].var())


def blend_weights(anim: Animator, targets: list[np.ndarray]) -> None:
    """For a warp model: the weight its blend gives generated pixels, over the crop and outside the face, per frame
    (where the picture can go soft: the person's own warped pixels give way to an average)."""
    gen = getattr(anim.backend, "generator", None)
    if gen is None or getattr(gen, "cfg", None) is None or gen.cfg.arch != "warp":
        return
    seen: list[np.ndarray] = []
    hook = gen.register_forward_hook(lambda _m, _i, out: seen.append(out[1]["blend"][:, 2].float().cpu().numpy()))
    try:
        anim.render(np.stack(targets))
    finally:
        hook.remove()
    w = np.concatenate(seen)
    size = w.shape[-1]
    outside = [float(wi[~face_mask(t * (size / 256), size)].mean()) for wi, t in zip(w, targets, strict=True)]
    whole = w.reshape(len(w), -1).mean(1)
    print(f"blend  generated pixels' weight: whole crop mean {whole.mean():.3f} (frame max {whole.max():.3f}); "
          f"outside the face mean {np.mean(outside):.3f} (frame max {np.max(outside):.3f}, "
          f"frames 100 / 140: {outside[min(100, len(w) - 1)]:.3f} / {outside[min(140, len(w) - 1)]:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model file or run folder (default: the shipped model)")
    ap.add_argument("--save-frames", help="write every 20th output frame here as PNG")
    args = ap.parse_args()
    anim = Animator(args.model, device="cpu")
    anim.set_source([astronaut()])
    track, fps = driving_motion()
    src = anim.sources[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo.mp4"
        anim.animate((track, fps), out, AnimateOptions(progress=False, credentials=False))
        frames, _ = read_video(out)
    frames = np.stack(frames)
    photo_emb = identity_embedding(src.crop, src.landmarks)
    assert photo_emb is not None, "no face in the photo"
    driving_open = mouth_opening(track)
    score("ours", frames, photo_emb, driving_open, src.crop)
    step = FrameStep(anim, AnimateOptions())  # the demo's target landmarks, as the pipeline computes them
    faces = iter([(l_ if np.isfinite(l_).all() else None, None) for l_ in track])
    targets = [step.target(l_, None) for l_, *_ in step.look_ahead(faces, fps)]
    pa = np.stack([piecewise_affine(src.crop, src.landmarks, t) for t in targets])
    score("warp", pa, photo_emb, driving_open, src.crop)
    blend_weights(anim, targets)
    if args.save_frames:
        d = Path(args.save_frames)
        d.mkdir(parents=True, exist_ok=True)
        for i in range(0, len(frames), 20):
            write_image(d / f"demo_{i:03d}.png", frames[i])


if __name__ == "__main__":
    main()
