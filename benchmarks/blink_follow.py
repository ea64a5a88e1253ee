"""Cross-reenactment: does the portrait close its eyes when the driver blinks? Prints figures; asserts nothing.

For every portrait × driving clip, the clip's landmark track (tracked as ``animate`` tracks a driving file) animates
the portrait through :meth:`Animator.animate` (H.264 written and read back), with and without
``AnimateOptions.full_blinks``. The driver's blinks are its frames whose eye opening is under ``--blink`` of its
median (:func:`~talkinghead.faces.measures.eye_opening` on the track). Two measures, each on the driver's frames and
on the output's, with landmarks *detected* on each (the driving frames' own and the output's):

- **eye change**: each eye resampled in its own frame (from corner to corner, ±0.4 eye widths across), and the
  mean absolute grey difference from the clip's median eye over its frames outside blinks. A blink replaces the
  iris and the white by the lid, so this rises; the output's rise over its own calm level, divided by the driver's,
  says how much of the blink is shown (0: nothing; not bounded by 1: a photo's white eyes change more when covered
  than a small driving face's). This does not rely on where the detector puts the lids of a closed eye.
- **dlib's reading**: the output's eye opening in the blinks relative to its median, as depth (1 - that), over the
  driver's. dlib puts the lid points of real closed eyes at 0.4-0.7 of their open distance, and of drawn ones
  anywhere, so this one is noisy.

    .venv/bin/python benchmarks/blink_follow.py [--frames 200] [--portraits NAME ...] [--driving VIDEO ...]

Defaults: the eight portraits of ``mouth_follow.py`` and the validation clips (never trained on) in which the
driver blinks.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from mouth_follow import CORPUS, PORTRAITS, track, validation_clips

from talkinghead.evaluation.metrics import detect_face_landmarks
from talkinghead.faces.measures import eye_opening
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.inference.gaze import EYES, eye_frame
from talkinghead.io import read_video


def eye_patches(image: np.ndarray, lmk: np.ndarray | None, n: int = 24) -> np.ndarray | None:
    """Both eyes resampled in their own frames, ``(2, n/2, n)`` grey; None without landmarks."""
    if lmk is None:
        return None
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    out = []
    for idx in EYES:
        c0, ex, ey, w = eye_frame(lmk, idx)
        uu, vv = np.meshgrid(np.linspace(0, 1, n), np.linspace(-0.4, 0.4, n // 2))
        pts = c0 + (uu[..., None] * ex + vv[..., None] * ey) * w
        out.append(cv2.remap(gray, pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32),
                             cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out)


def changes(frames: list[np.ndarray], landmarks: list[np.ndarray | None], calm: np.ndarray) -> np.ndarray:
    """Per frame, the mean absolute grey difference of its eyes from the median eyes of the ``calm`` frames."""
    patches = [eye_patches(f, lm) for f, lm in zip(frames, landmarks, strict=True)]
    ref = np.median(np.stack([p for p, c in zip(patches, calm, strict=True) if c and p is not None]), 0)
    return np.array([np.nan if p is None else float(np.abs(p - ref).mean()) for p in patches])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portraits", nargs="+", default=PORTRAITS)
    ap.add_argument("--driving", nargs="+", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--blink", type=float, default=0.65)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    anim = Animator(args.model, device="cpu")
    drivers = []
    for d in args.driving or validation_clips():
        lmks, fps = track(d, args.frames)
        ok = np.isfinite(lmks).all((1, 2))
        opening = np.full(len(lmks), np.nan)
        opening[ok] = eye_opening(lmks[ok])
        blink = opening < args.blink * np.nanmedian(opening)
        if blink.sum() < 2:
            print(f"{d.parent.name}: no blink, left out")
            continue
        images, _ = read_video(d, max_frames=args.frames)
        found = [detect_face_landmarks(f) for f in images]
        drv = changes(images, found, ~blink)
        drivers.append((d, lmks, fps, blink, drv, opening))
    results: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.portraits:
            photo = sorted((CORPUS / "images" / "portraits" / name).iterdir())[0]
            anim.set_source([photo], progress=False)
            for d, lmks, fps, blink, drv, opening in drivers:
                line = [f"{name:18s} {d.parent.name:24s} {int(blink.sum()):3d} blink frames"]
                for variant in ("without", "with"):
                    out = Path(tmp) / "out.mp4"
                    anim.animate((lmks, fps), out, AnimateOptions(full_blinks=variant == "with", progress=False,
                                                                  credentials=False))
                    frames, _ = read_video(out)
                    found = [detect_face_landmarks(f) for f in frames]
                    got = changes(frames, found, ~blink)
                    shown = (np.nanmean(got[blink]) - np.nanmedian(got[~blink])) / \
                        (np.nanmean(drv[blink]) - np.nanmedian(drv[~blink]))
                    eyes = np.array([np.nan if lm is None else float(eye_opening(lm)) for lm in found])
                    depth = (1 - np.nanmean(eyes[blink]) / np.nanmedian(eyes)) / \
                        (1 - np.nanmean(opening[blink]) / np.nanmedian(opening))
                    results[variant].append((float(shown), float(depth)))
                    line.append(f"{variant}: eye change shown {shown:5.2f}, dlib depth {depth:5.2f}")
                print(" | ".join(line), flush=True)
    for variant, rows in results.items():
        r = np.array(rows)
        print(f"{variant:7s} full blinks: eye change shown {r[:, 0].mean():.3f} (median {np.median(r[:, 0]):.3f}), "
              f"dlib depth {r[:, 1].mean():.3f} (median {np.median(r[:, 1]):.3f}) over {len(r)} pairs")


if __name__ == "__main__":
    main()
