"""Cross-reenactment: does the portrait's mouth open and close with the driver's? Prints figures; asserts nothing.

Relative motion adds each driving frame's displacement from a *reference* frame to the photo's landmarks. With the
first frame as the reference, a driver that starts mid-word (mouth open) leaves a closed-mouth photo's mouth shut
for the whole clip, and a driver that starts with a closed mouth turns an open-mouthed smile's closures into lips
pressed together. ``--reference auto`` (the default since this benchmark) takes the frame of the first 2 s most like
the photo in pose and expression instead (``talkinghead.inference.retarget.reference_index``).

For every photo × driving clip and both references, the clip's landmark track (tracked once) animates the photo
through :meth:`Animator.animate` (the product's path: H.264 written and read back), landmarks are *detected* on
each output frame, and the output's mouth opening (inner-lip distance / inter-ocular distance) is compared with
the driver's: Pearson r per pair, then the mean over pairs; also the output's mean opening and the share of
frames where the driver's mouth is open (over 0.1) but the output's is shut (under 0.03).

    .venv/bin/python benchmarks/mouth_follow.py [--frames 125] [--model FILE] [--variants first auto video mouth]
        [--portraits NAME ...] [--driving VIDEO ...]
    .venv/bin/python benchmarks/mouth_follow.py --targets-only --windows 1 2 5   # the look-ahead, in seconds

``--targets-only`` renders nothing: it scores the target landmarks themselves, per look-ahead window (the reference
chosen among that many seconds of the clip): the share of frames whose inner lips cross (lower above upper by more
than 0.02 inter-ocular distances), which is what pushed lips through each other in the rendered frames; the share
of the driver's blinks (eye opening under ``BLINK`` of its median) in which the target's eyes close too (under
``BLINK`` of the photo's), and of frames whose eyes open wider than the photo's by a third.

Defaults: eight portraits from ``../shared/corpus/images/portraits`` (none in the training data) and the first
clip of each validation identity of ``../shared/corpus/videos.csv`` (never trained on).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

from talkinghead.config import PrepareConfig, TrackerConfig
from talkinghead.evaluation.metrics import detect_face_landmarks
from talkinghead.faces.measures import eye_opening, interocular, mouth_opening
from talkinghead.faces.smooth import smooth_found
from talkinghead.faces.track import FaceTracker
from talkinghead.inference.animate import CROP_SIZE, AnimateOptions, Animator
from talkinghead.inference.retarget import BLINK, Retargeter, in_blink, reference_index
from talkinghead.inference.source import load_sources
from talkinghead.io import read_video
from talkinghead.io.video import VideoWriter

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PORTRAITS = ["echomimic_b", "gpen_00004", "hallo_3", "anthony_hopkins", "audrey_hepburn", "SYN_vasa_l3",
             "codeformer_0342", "deca_image02246"]
OPEN, SHUT = 0.1, 0.03
VARIANTS = ("first", "auto", "video", "mouth")


def validation_clips() -> list[Path]:
    seen: dict[str, Path] = {}
    with open(CORPUS / "videos.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == "val" and row["identity"] not in seen:
                seen[row["identity"]] = CORPUS / row["path"]
    return list(seen.values())


def track(path: Path, frames: int) -> tuple[np.ndarray, float]:
    """The clip's first ``frames`` frames tracked as ``animate`` tracks a driving file: smoothed centred."""
    images, info = read_video(path, max_frames=frames)
    tracker = FaceTracker(TrackerConfig(smoothing=0.0), fps=info.fps)
    lmks = [tracker.update(f).landmarks for f in images]
    track = np.stack([np.full((68, 2), np.nan, np.float32) if x is None else x for x in lmks])
    return smooth_found(track, AnimateOptions().track_smoothing), info.fps


def openings(video: Path) -> np.ndarray:
    frames, _ = read_video(video)
    out = []
    for f in frames:
        lmk = detect_face_landmarks(f)
        out.append(np.nan if lmk is None else float(mouth_opening(lmk)))
    return np.array(out)


def crossed_lips(portraits: list[str], tracks: dict[Path, tuple[np.ndarray, float]], windows: list[float]) -> None:
    sources = [load_sources([sorted((CORPUS / "images" / "portraits" / n).iterdir())[0]], 1,
                            PrepareConfig(size=CROP_SIZE))[0].landmarks for n in portraits]
    for seconds in [0.0, *windows]:  # 0: the first frame with a face
        crossed, kept, wide, blink_ref = [], [], [], []
        for src in sources:
            for lmks, fps in tracks.values():
                faces = [x if np.isfinite(x).all() else None for x in lmks]
                ret = Retargeter(src)
                i = reference_index(faces[: max(1, round(seconds * fps))], src) if seconds else \
                    next(j for j, x in enumerate(faces) if x is not None)
                ret.set_reference(faces[i])  # type: ignore[arg-type]
                window = np.stack([x for x in faces[: round(2 * fps)] if x is not None])  # is it a blink?
                blink_ref.append(bool(eye_opening(faces[i]) < BLINK * np.median(eye_opening(window))))
                drv = np.stack([x for x in faces if x is not None])
                tg = np.stack([ret(x) for x in drv])
                gap = (tg[:, [67, 66, 65], 1] - tg[:, [61, 62, 63], 1]).mean(1) / interocular(tg)
                crossed.append(float((gap < -0.02).mean()))
                blinks = in_blink(drv)
                if blinks.any():  # the driver's blinks: do the target's eyes close with them?
                    kept.append(float((eye_opening(tg[blinks]) < BLINK * eye_opening(src)).mean()))
                wide.append(float((eye_opening(tg) > eye_opening(src) / BLINK).mean()))
        name = f"best of the first {seconds:g} s" if seconds else "the first frame"
        print(f"reference = {name:24s}: inner lips crossed in {np.mean(crossed):.1%} of target frames "
              f"({len(crossed)} pairs); the reference in a blink in {sum(blink_ref)} pairs; the driver's blinks "
              f"closing the target's eyes {np.mean(kept):.1%} ({len(kept)} pairs with blinks); eyes opened wider "
              f"than the photo's by a third {np.mean(wide):.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portraits", nargs="+", default=PORTRAITS)
    ap.add_argument("--driving", nargs="+", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=125)
    ap.add_argument("--model", default=None)
    ap.add_argument("--targets-only", action="store_true")
    ap.add_argument("--windows", nargs="+", type=float, default=[1.0, 2.0, 5.0])
    ap.add_argument("--variants", nargs="+", default=["first", "auto"], choices=VARIANTS,
                    help="first / auto: the reference frame, driven by the landmark track; video / mouth: auto, "
                         "driven by the clip's frames themselves, without / with the driver's mouth interior "
                         "(AnimateOptions.driver_mouth)")
    args = ap.parse_args()
    drivers = args.driving or validation_clips()
    tracks = {d: track(d, args.frames) for d in drivers}
    if args.targets_only:
        crossed_lips(args.portraits, tracks, args.windows)
        return
    anim = Animator(args.model, device="cpu")
    rs: dict[str, list[float]] = {v: [] for v in args.variants}
    means: dict[str, list[float]] = {v: [] for v in args.variants}
    shut: dict[str, list[float]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory() as tmp:
        clips: dict[Path, Path] = {}
        if {"video", "mouth"} & set(args.variants):  # the frames the tracks were made from, as a clip of their own
            for i, d in enumerate(drivers):
                images, info = read_video(d, max_frames=args.frames)
                with VideoWriter(Path(tmp) / f"clip{i}.mp4", fps=info.fps, crf=12) as writer:
                    for image in images:
                        writer.write(image)
                clips[d] = writer.path
        for name in args.portraits:
            photo = sorted((CORPUS / "images" / "portraits" / name).iterdir())[0]
            anim.set_source([photo], progress=False)
            for d, (lmks, fps) in tracks.items():
                drv = mouth_opening(lmks)
                line = [f"{name:18s} {d.parent.name:24s}"]
                for ref in args.variants:
                    out = Path(tmp) / f"{ref}.mp4"
                    if ref in ("video", "mouth"):
                        anim.animate(clips[d], out, AnimateOptions(driver_mouth=ref == "mouth", progress=False,
                                                                   credentials=False))
                    else:
                        anim.animate((lmks, fps), out, AnimateOptions(reference=ref, progress=False,
                                                                      credentials=False))
                    got = openings(out)
                    ok = np.isfinite(drv) & np.isfinite(got)
                    r = float(np.corrcoef(drv[ok], got[ok])[0, 1]) if ok.sum() > 2 and got[ok].std() > 0 else 0.0
                    s = float(((drv[ok] > OPEN) & (got[ok] < SHUT)).sum() / max((drv[ok] > OPEN).sum(), 1))
                    rs[ref].append(r)
                    means[ref].append(float(np.nanmean(got)))
                    shut[ref].append(s)
                    line.append(f"{ref}: r {r:6.3f}, mean opening {np.nanmean(got):.3f}, shut while open {s:5.1%}")
                print(" | ".join(line) + f" | driver mean {np.nanmean(drv):.3f}", flush=True)
    for ref in args.variants:
        r = np.array(rs[ref])
        print(f"reference {ref:5s}: mean r {r.mean():.3f} (median {np.median(r):.3f}, lowest {r.min():.3f}) over "
              f"{len(r)} pairs; mean output opening {np.mean(means[ref]):.3f}; shut while the driver's is open "
              f"{np.mean(shut[ref]):.1%}")


if __name__ == "__main__":
    main()
