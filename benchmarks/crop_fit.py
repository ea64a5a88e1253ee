"""Photos whose face crop reaches outside the picture: keeping the crop inside (``PrepareConfig.fit_photo``, the
default) against the face-centred crop filled with the photo's blurred edge colours. Prints figures; asserts
nothing.

First, over every portrait under ``--portraits`` (one photo per folder, groups left out): how many crops reach
outside the picture, and how much of the crop's border lies outside, before and after fitting. Then the first
``--count`` of those photos are animated by the bundled demo motion (relative motion, no paste-back: the output
is the crop, where a filled band shows) both ways, and per output frame (every 3rd, read back from the H.264):

- **filled**: the share of the output's pixels that lie outside the photo (from the crop box);
- **identity**: dlib's descriptor distance between the frame and the photo (under 0.6 = the same person);
- **mouth r**: correlation of the output's mouth opening (landmarks detected on it) with the driving motion's.

    .venv/bin/python benchmarks/crop_fit.py [--portraits ../shared/corpus/images/portraits] [--count 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from talkinghead.assets import driving_motion
from talkinghead.config import PrepareConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.metrics import detect_face_landmarks, identity_embedding
from talkinghead.faces.crop import CropBox, face_crop_box, fit_inside
from talkinghead.faces.landmarks import detect_landmarks
from talkinghead.faces.measures import mouth_opening
from talkinghead.inference.animate import CROP_SIZE, AnimateOptions, Animator
from talkinghead.io import read_image, read_video

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def outside(box: CropBox, height: int, width: int) -> tuple[float, float]:
    """(the crop's border lengths outside the picture, summed over its four sides, over its side; the share of
    its area outside the picture)."""
    left, top = max(0.0, -box.x0), max(0.0, -box.y0)
    right, bottom = max(0.0, box.x0 + box.side - width), max(0.0, box.y0 + box.side - height)
    inside = max(0.0, box.side - left - right) * max(0.0, box.side - top - bottom)
    return (left + right + top + bottom) / box.side, 1.0 - inside / box.side**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--portraits", default=str(Path(__file__).resolve().parents[2] / "shared/corpus/images/portraits"))
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--frames", type=int, default=90, help="driving frames (of the bundled motion)")
    args = ap.parse_args()
    cfg = PrepareConfig(size=CROP_SIZE)

    reaching, total, before, after = [], 0, [], []
    for folder in sorted(Path(args.portraits).iterdir()):
        photos = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.name.startswith("MULTI") or not photos:
            continue
        try:
            image = read_image(photos[0])
            lmk = detect_landmarks(image, 0, source=str(photos[0]))
        except TalkingHeadError:
            continue
        total += 1
        box = face_crop_box(lmk, cfg.margin, cfg.shift_up)
        out = outside(box, *image.shape[:2])[0]
        if out > 0:
            reaching.append(photos[0])
            before.append(out)
            after.append(outside(fit_inside(box, *image.shape[:2]), *image.shape[:2])[0])
    b, a = np.array(before), np.array(after)
    print(f"{total} portraits; the crop reaches outside the picture for {len(b)}: border outside / side, median "
          f"{np.median(b):.3f} (mean {b.mean():.3f}); fitted: median {np.median(a):.3f} (mean {a.mean():.3f}), "
          f"fully inside for {(a == 0).sum()}\n")

    track, fps = driving_motion()
    track = track[: args.frames]
    driving_open = mouth_opening(track)
    rows: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    print(f"{'portrait':44s} {'crop':9s} {'filled':>6s} {'identity':>8s} {'mouth r':>7s}")
    for path in reaching[: args.count]:
        photo = read_image(path)
        photo_emb = identity_embedding(photo, detect_face_landmarks(photo))
        if photo_emb is None:
            continue
        for fit in (False, True):
            anim = Animator(device="cpu", face=dataclasses.replace(cfg, fit_photo=fit))
            anim.set_source([photo], progress=False)
            box = anim.sources[0].box
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out.mp4"
                anim.animate((track, fps), out, AnimateOptions(progress=False, credentials=False, watermark=False))
                frames, _ = read_video(out)
            picks = list(range(0, len(frames), 3))
            dist, opening = [], []
            for i in picks:
                lmk = detect_face_landmarks(frames[i])
                e = identity_embedding(frames[i], lmk) if lmk is not None else None
                dist.append(float(np.linalg.norm(e - photo_emb)) if e is not None else np.inf)
                opening.append(float(mouth_opening(lmk)) if lmk is not None else np.nan)
            ok = np.isfinite(opening)
            r = float(np.corrcoef(np.array(opening)[ok], driving_open[picks][ok])[0, 1]) if ok.sum() > 2 else np.nan
            row = (outside(box, *photo.shape[:2])[1], float(np.median(dist)), r)
            rows[fit].append(row)
            name = f"{path.parent.name}/{path.name}"[-44:]
            print(f"{name:44s} {'fitted' if fit else 'centred':9s} {row[0]:6.3f} {row[1]:8.3f} {row[2]:7.3f}")
    for fit in (False, True):
        m = np.array(rows[fit])
        print(f"mean over {len(m)} portraits, {'fitted' if fit else 'face-centred'} crop: filled {m[:, 0].mean():.3f}, "
              f"identity distance {m[:, 1].mean():.3f}, mouth r {np.nanmean(m[:, 2]):.3f}")


if __name__ == "__main__":
    main()
