"""Relative motion's limits on how far the face turns (``--max-turn``, default 1.5) and moves (``--max-shift``,
default 0.5 inter-ocular distances), each against not limiting it (``--limit turn`` or ``shift``; the other limit
stays at its default in both runs). Prints figures; asserts nothing.

A face turned three-quarters away shows one cheek as a sliver. A driver who turns towards the camera widens that
cheek in its landmarks; the warp, which moves the photo's pixels in two dimensions, can only stretch the sliver
(and whatever lies in it: lashes, hair, the painting's background) across the new width. A driver who moves far in
his frame moves the photo's face towards the crop's border, which the warp holds, as the body stays. Per photo (the
corpus's paintings and single-face portraits most turned, and the most frontal ones) and driver (corpus clips that
turn or move a lot, and the bundled demo motion as everyday talking), with and without the limit:

- **bound**: the share of frames whose target landmarks the limit changed;
- **cheek**: how many times wider the wider-grown cheek looks than in the photo (95th percentile over frames);
- **stretch**: how far the landmark warp stretches the photo inside the face (the thin-plate flow's stretch over
  the target's face hull less its mouth and eyes, which open and close by design: its 99th percentile over the hull,
  then the 95th percentile over frames; 1 = not stretched);
- **identity**: dlib's descriptor distance between rendered frames (every ``--every``-th) and the photo (median,
  and the share of frames over 0.6, dlib's rule for another person, or with no face found);
- **mouth**: the targets' mouth opening with the limit against without: mean absolute difference (inter-ocular
  distances) over the frames where the limit acts (the expression is meant to be kept).

    .venv/bin/python benchmarks/motion_limits.py [--limit turn|shift] [--corpus ../shared/corpus] [--turned 10]
        [--frontal 3] [--every 8] [--figure docs/turn_limit.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from talkinghead.assets import driving_motion
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.metrics import identity_embedding
from talkinghead.faces.measures import interocular, mouth_opening, turn
from talkinghead.faces.track import track_video
from talkinghead.faces.warp import tps_grid
from talkinghead.inference.animate import AnimateOptions, Animator, FrameStep
from talkinghead.inference.retarget import cheek_stretch
from talkinghead.inference.source import SourceFace, load_sources
from talkinghead.io.images import write_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
DRIVERS = ("lp_d3_woman/liveportrait__d3.mp4", "lp_d20_asian_man/liveportrait__d20.mp4",
           "pcavs_pose_681600002", "styletalk_furious_man/styletalk__furious_talk1_clip2.mp4")


def warp_stretch(target: np.ndarray, source: np.ndarray, size: int, head: float) -> float:
    """The largest stretch of the backward thin-plate flow (target → source) inside the target's face hull: for
    each grid cell, 1 / the smaller singular value of the flow's Jacobian (the forward map's largest stretch)."""
    g = 64
    grid = (tps_grid(target, source, size, g, head=head).astype(np.float64) + 1.0) * g / 2.0  # in grid cells
    jx = np.gradient(grid, axis=1)  # d(source)/d(target x)
    jy = np.gradient(grid, axis=0)
    jac = np.stack([jx, jy], -1)  # (g, g, 2 [source xy], 2 [target xy])
    smallest = np.linalg.svd(jac, compute_uv=False)[..., -1]
    pts = target * g / size
    iod = float(interocular(pts))
    mask = np.zeros((g, g), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts.round().astype(np.int32)), 1)
    for part in (pts[48:68], pts[36:42], pts[42:48]):  # a mouth that opens and lids that close stretch by design
        centre = part.mean(0)
        grown = centre + (part - centre) * 1.2 + np.sign(part - centre) * 0.1 * iod
        cv2.fillConvexPoly(mask, cv2.convexHull(grown.round().astype(np.int32)), 0)
    inside = smallest[mask.astype(bool)]
    return float(np.percentile(1.0 / np.maximum(inside, 1e-6), 99)) if inside.size else 1.0


def targets(anim: Animator, track: np.ndarray, fps: float, **limits: float) -> np.ndarray:
    """The pipeline's own target landmarks for a driving track (reference chosen as ``animate`` chooses it), with
    these :class:`AnimateOptions` limits (``max_turn``, ``max_shift``)."""
    step = FrameStep(anim, AnimateOptions(**limits))
    faces = iter([(l_ if np.isfinite(l_).all() else None, None) for l_ in track])
    return np.stack([step.target(l_, None) for l_, *_ in step.look_ahead(faces, fps)])


def identity(anim: Animator, tgt: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Descriptor distance to the photo per rendered frame (inf: no face found)."""
    frames = anim.render(tgt)
    out = []
    for f, t in zip(frames, tgt):
        e = identity_embedding(f, t)
        out.append(np.inf if e is None else float(np.linalg.norm(e - photo)))
    return np.array(out)


def write_figure(path: Path, anim: Animator, photos: list[tuple[str, float, SourceFace]],
                 driver: tuple[str, np.ndarray, float], args: argparse.Namespace) -> None:
    """Rows: each figure photo at each figure frame; columns: its crop, the frame without and with the limit."""
    _, track, fps = driver
    rows = []
    for name in args.figure_photos:
        face = next((f for stem, _, f in photos if stem == name), None)
        if face is None:
            print(f"figure: no photo named {name}")
            continue
        anim.set_faces([face], progress=False)
        free, lim = targets(anim, track, fps, **{f"max_{args.limit}": 0.0}), targets(anim, track, fps)
        for i in args.figure_frames:
            rendered = anim.render(np.stack([free[i], lim[i]]))
            rows.append(np.concatenate([cv2.resize(face.crop, rendered.shape[1:3][::-1]), *rendered], 1))
    if rows:
        write_image(path, np.concatenate(rows, 0))
        print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/corpus"))
    ap.add_argument("--turned", type=int, default=10, help="the most turned photos (paintings and portraits)")
    ap.add_argument("--frontal", type=int, default=3, help="the most frontal photos")
    ap.add_argument("--every", type=int, default=8, help="every n-th frame for the stretch and identity figures")
    ap.add_argument("--limit", choices=("turn", "shift"), default="turn", help="which limit to switch off and on")
    ap.add_argument("--figure", help="also write a PNG: --figure-photos driven by --figure-driver, frames "
                                     "--figure-frames, each as the photo's crop | not limited | limited")
    ap.add_argument("--figure-photos", nargs="+", default=["lia__mona_lisa", "aaai22_oneshot__paint"])
    ap.add_argument("--figure-frames", nargs="+", type=int, default=[180, 260])
    ap.add_argument("--figure-driver", default="liveportrait__d3", help="the driver (file name without suffix)")
    args = ap.parse_args()
    corpus = Path(args.corpus)

    anim = Animator(device="cpu")
    photos: list[tuple[str, float, SourceFace]] = []
    for path in sorted((corpus / "images/paintings").glob("*")) + sorted((corpus / "images/portraits").glob("*/*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.parent.name.startswith("MULTI"):
            continue
        try:
            face = load_sources([path], cfg=anim.face)[0]
        except TalkingHeadError:
            continue
        photos.append((path.stem, float(turn(face.landmarks)), face))
    ranked = sorted(photos, key=lambda p: abs(p[1] - 0.5))
    chosen = ranked[::-1][: args.turned] + ranked[: args.frontal]
    print(f"{len(photos)} photos with a face; scoring the {args.turned} most turned and the {args.frontal} most "
          f"frontal")

    drivers: list[tuple[str, np.ndarray, float]] = [("demo motion", *driving_motion())]
    for d in DRIVERS:
        path = corpus / "videos" / d
        if path.is_dir():
            path = sorted(path.glob("*.mp4"))[0]
        lmk, fps = track_video(str(path))
        drivers.append((path.stem, lmk, fps))

    print("driver | photo (turn) | bound | cheek free / limited | stretch free / limited | identity median free / "
          "limited | over 0.6 or lost free / limited | mouth |diff|")
    summary: dict[str, list[list[float]]] = {}
    for dname, track, fps in drivers:
        for name, t0, face in chosen:
            anim.set_faces([face], progress=False)
            src = face.landmarks
            free, lim = targets(anim, track, fps, **{f"max_{args.limit}": 0.0}), targets(anim, track, fps)
            bound = np.abs(free - lim).max((1, 2)) > 1e-3
            cheek = [np.percentile([cheek_stretch(src, t) for t in x], 95) for x in (free, lim)]
            head = anim.bundle.config.head_ring
            stretch = [np.percentile([warp_stretch(t, src, anim.resolution, head) for t in x[:: args.every]], 95)
                       for x in (free, lim)]
            photo = identity_embedding(face.crop, src)
            ids = [identity(anim, x[:: args.every], photo) for x in (free, lim)] if photo is not None else None
            iod = float(interocular(src))
            mouth = float(np.abs(mouth_opening(free[bound]) - mouth_opening(lim[bound])).mean()) if bound.any() else 0.0
            row = [bound.mean(), *cheek, *stretch]
            if ids is not None:
                row += [float(np.median(ids[0])), float(np.median(ids[1])), float((ids[0] > 0.6).mean()),
                        float((ids[1] > 0.6).mean())]
            row.append(mouth)
            summary.setdefault(dname, []).append(row)
            print(f"{dname} | {name} ({t0:.2f}) | {bound.mean():.2f} | {cheek[0]:.2f} / {cheek[1]:.2f} | "
                  f"{stretch[0]:.2f} / {stretch[1]:.2f} | "
                  + (f"{row[5]:.3f} / {row[6]:.3f} | {row[7]:.2f} / {row[8]:.2f}" if ids is not None else "- | -")
                  + f" | {mouth:.4f} (iod {iod:.0f} px)", flush=True)
    if args.figure:
        write_figure(Path(args.figure), anim, photos, next(d for d in drivers if d[0] == args.figure_driver), args)
    print("\nmeans over the photos (identity columns over the photos where the photo itself gave a descriptor):")
    for dname, rows in summary.items():
        full = np.array([r for r in rows if len(r) == 10])
        a = np.array([r[:5] for r in rows]).mean(0)
        ident = full[:, 5:9].mean(0) if len(full) else np.full(4, np.nan)
        print(f"{dname}: bound {a[0]:.2f} | cheek {a[1]:.2f} / {a[2]:.2f} | stretch {a[3]:.2f} / {a[4]:.2f} | "
              f"identity {ident[0]:.3f} / {ident[1]:.3f} | over 0.6 {ident[2]:.2f} / {ident[3]:.2f}")


if __name__ == "__main__":
    main()
