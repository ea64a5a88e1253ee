"""Do the output's eyes look where the driver's look? Prints figures; asserts nothing.

The 68 landmarks carry the lids, not the gaze, so without help a landmark-driven portrait stares at one spot while
the driver looks about. ``AnimateOptions.driver_gaze`` (:mod:`talkinghead.inference.gaze`) slides the output's
irises by the driver's gaze relative to where it usually looks.

For every photo × driving clip, the clip's frames animate the photo through :meth:`Animator.animate` (the product's
path: H.264 written and read back) with the option off and on; the written frames are tracked again and each eye's
iris found the same way on them as on the driver (:func:`~talkinghead.inference.gaze.iris_positions`; on the
output the two eyes' mean wherever both are read, on the driver the gaze the product follows). Per pair, over the
frames where both gazes were read: Pearson r of the output's horizontal gaze (relative to its median)
against the driver's, and the slope of the output's on the driver's (1: the iris moves as far, in eye widths).

    .venv/bin/python benchmarks/gaze_follow.py [--frames 250] [--portraits NAME ...] [--driving VIDEO ...]
    .venv/bin/python benchmarks/gaze_follow.py --drivers-only      # how much each clip's gaze moves
    .venv/bin/python benchmarks/gaze_follow.py --stability --driving VIDEO ...   # jitter added around the eyes
    .venv/bin/python benchmarks/gaze_follow.py --speak [--seeds 0 1 2]   # speak's glances

``--stability``: the mean absolute frame-to-frame change (0-255) of the output around the first photo's eyes
(the box of its eye landmarks, 10 px out), without and with the option: on drivers who look straight ahead it
shows whether the irises jitter.

``--speak``: ``speak``'s glances (the idle-motion bank's gaze) instead of a driver's. Per photo and ``--seeds``, a
sentence is said with glances off and on; on the written frames, tracked again: the std of the output's
horizontal gaze (relative to its median) off and on, r of it against the bank's planned iris shift, and the
frame-to-frame change around the eyes off and on (no jitter may be added).

Defaults: four portraits and two paintings of ``../shared/corpus/images`` and three LivePortrait driving clips in
which the eyes look about most (``lp_d14``, ``lp_d11``, ``lp_d10``: ``--drivers-only``; the gaze is not learnt
from any clip).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from talkinghead.config import TrackerConfig
from talkinghead.faces.track import FaceTracker
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.inference.gaze import GazeFollower, iris_positions
from talkinghead.io import read_video
from talkinghead.io.video import VideoWriter

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SOURCES = ["portraits/hallo_3", "portraits/audrey_hepburn", "portraits/gpen_00004", "portraits/echomimic_b",
           "paintings/sadtalker__art_2.jpg", "paintings/lia__mona_lisa.jpg"]
DRIVERS = ["lp_d14_asian_woman", "lp_d11_girl", "lp_d10_woman"]


def source_path(name: str) -> Path:
    p = CORPUS / "images" / name
    return sorted(p.iterdir())[0] if p.is_dir() else p


def gazes(frames: list[np.ndarray], fps: float) -> tuple[np.ndarray, np.ndarray, GazeFollower]:
    """Per frame, the gaze ``(u, v)`` the product reads (both eyes read and agreeing) and the two eyes' plain mean
    (both read; the measure on the output), NaN where there is none; and the follower that read them."""
    tracker = FaceTracker(TrackerConfig(), fps=fps)
    follower = GazeFollower()
    read, plain = [], []
    for f in frames:
        lmk = tracker.update(f).landmarks
        read.append(np.full(2, np.nan) if lmk is None else follower.observe(f, lmk))
        plain.append(np.full(2, np.nan) if lmk is None else iris_positions(f, lmk).mean(0))
    return np.stack(read), np.stack(plain), follower


def follow(driver: np.ndarray, output: np.ndarray) -> tuple[float, float, int]:
    """(r, slope, frames) of the output's horizontal gaze on the driver's, each relative to its median."""
    ok = np.isfinite(driver[:, 0]) & np.isfinite(output[:, 0])
    if ok.sum() < 10:
        return float("nan"), float("nan"), int(ok.sum())
    d = driver[ok, 0] - np.median(driver[ok, 0])
    o = output[ok, 0] - np.median(output[ok, 0])
    r = float(np.corrcoef(d, o)[0, 1]) if d.std() > 0 and o.std() > 0 else 0.0
    return r, float((d * o).sum() / max((d * d).sum(), 1e-9)), int(ok.sum())


def stability(anim: Animator, photo: Path, drivers: list[Path], frames: int) -> None:
    anim.set_source([photo], progress=False)
    eyes = anim.sources[0].landmarks[36:48]
    (x0, y0), (x1, y1) = (eyes.min(0) - 10).astype(int), (eyes.max(0) + 10).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        for d in drivers:
            change = []
            for on in (False, True):
                out = Path(tmp) / "out.mp4"
                anim.animate(d, out, AnimateOptions(progress=False, driver_gaze=on, watermark=False, credentials=False))
                images = np.stack(read_video(out, max_frames=frames)[0])[:, y0:y1, x0:x1].astype(np.float32)
                change.append(float(np.abs(np.diff(images, axis=0)).mean()))
            print(f"{photo.parent.name} × {d.parent.name}: frame-to-frame change around the eyes {change[0]:.2f} "
                  f"without, {change[1]:.2f} with")


SENTENCE = ("Hello! I am glad to meet you. Let me tell you a story about a long journey, a small boat and the "
            "wide blue sea.")


def speak_glances(anim: Animator, portraits: list[str], seeds: list[int]) -> None:
    from talkinghead.inference.gaze import iris_shift
    from talkinghead.speech.bank import idle_motion
    from talkinghead.speech.drive import SpeechDriver, load_speech, speak

    with tempfile.TemporaryDirectory() as tmp:
        speech = load_speech(None, SENTENCE, Path(tmp))
        stats = []
        for name in portraits:
            photo = source_path(name)
            anim.set_source([photo], progress=False)
            eyes = anim.sources[0].landmarks[36:48]  # crop pixels (256²)
            for seed in seeds:
                driver = SpeechDriver(seed=seed)
                planned = iris_shift(idle_motion(driver.bank, len(speech.features), speech.fps, seed=seed)[2])[:, 0]
                row = []
                for on in (False, True):
                    out = Path(tmp) / "out.mp4"
                    speak(anim, out, speech, driver, AnimateOptions(progress=False, driver_gaze=on, watermark=False,
                                                                    credentials=False))
                    frames, info = read_video(out)
                    g = gazes(frames, info.fps)[1][:, 0]
                    ok = np.isfinite(g)
                    rel = g[ok] - np.median(g[ok]) if ok.any() else np.zeros(0)
                    r = float(np.corrcoef(rel, planned[: len(g)][ok])[0, 1]) \
                        if ok.sum() > 10 and rel.std() > 0 and planned[: len(g)][ok].std() > 0 else float("nan")
                    k = frames[0].shape[0] / 256
                    (x0, y0), (x1, y1) = ((eyes.min(0) - 10) * k).astype(int), ((eyes.max(0) + 10) * k).astype(int)
                    box = np.stack(frames)[:, y0:y1, x0:x1].astype(np.float32)
                    row.append((float(rel.std()) if len(rel) else float("nan"), r, int(ok.sum()),
                                float(np.abs(np.diff(box, axis=0)).mean())))
                stats.append(row)
                (s0, _, n0, c0), (s1, r1, n1, c1) = row
                print(f"{Path(name).name:22s} seed {seed}: planned shift std {planned.std():.3f}, |shift| > 0 in "
                      f"{np.mean(np.abs(planned) > 0):.0%} of frames | output gaze std off {s0:.3f} ({n0} frames), "
                      f"on {s1:.3f} ({n1}); r with the plan {r1:+.2f} | change around the eyes off {c0:.2f}, "
                      f"on {c1:.2f}", flush=True)
        a = np.array([[*off, *on] for off, on in stats], np.float64)
        print(f"mean over {len(a)}: output gaze std off {np.nanmean(a[:, 0]):.3f}, on {np.nanmean(a[:, 4]):.3f}; "
              f"r with the plan {np.nanmean(a[:, 5]):+.2f} (off {np.nanmean(a[:, 1]):+.2f}); change around the eyes "
              f"off {np.nanmean(a[:, 3]):.2f}, on {np.nanmean(a[:, 7]):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portraits", nargs="+", default=SOURCES)
    ap.add_argument("--driving", nargs="+", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--model", default=None)
    ap.add_argument("--drivers-only", action="store_true")
    ap.add_argument("--stability", action="store_true")
    ap.add_argument("--speak", action="store_true")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = ap.parse_args()
    if args.speak:
        speak_glances(Animator(args.model, device="cpu"), args.portraits, args.seeds)
        return
    drivers = args.driving or [sorted((CORPUS / "videos" / d).glob("*.mp4"))[0] for d in DRIVERS]
    clips = {d: read_video(d, max_frames=args.frames) for d in drivers}
    driver_gaze = {}
    for d, (frames, info) in clips.items():
        g, _, follower = gazes(frames, info.fps)
        driver_gaze[d] = g
        u = g[np.isfinite(g[:, 0]), 0]
        spread = (f"horizontal: std {u.std():.3f}, 5-95 % {np.percentile(u, 5):.2f}-{np.percentile(u, 95):.2f} "
                  "eye widths") if len(u) else "no reading"
        jitter = float(np.median(follower.steps)) if follower.steps else float("nan")
        print(f"{d.parent.name:28s} gaze read in {len(u)}/{len(g)} frames; {spread}; jitter {jitter:.3f} "
              f"({'followed' if follower.reliable else 'not followed'})")
    if args.drivers_only:
        return
    anim = Animator(args.model, device="cpu")
    if args.stability:
        stability(anim, source_path(args.portraits[0]), drivers, args.frames)
        return
    scores: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        written: dict[Path, Path] = {}
        for i, (d, (frames, info)) in enumerate(clips.items()):  # the frames read, as a clip of their own
            with VideoWriter(Path(tmp) / f"clip{i}.mp4", fps=info.fps, crf=12) as writer:
                for f in frames:
                    writer.write(f)
            written[d] = writer.path
        for name in args.portraits:
            anim.set_source([source_path(name)], progress=False)
            for d in drivers:
                line = []
                for on in (False, True):
                    out = Path(tmp) / "out.mp4"
                    anim.animate(written[d], out, AnimateOptions(progress=False, driver_gaze=on, watermark=False,
                                                                 credentials=False))
                    frames, info = read_video(out)
                    r, slope, n = follow(driver_gaze[d], gazes(frames, info.fps)[1])
                    scores[on].append((r, slope))
                    line.append(f"{'on' if on else 'off'}: r {r:+.2f} slope {slope:+.2f} ({n} frames)")
                print(f"{Path(name).name:22s} × {d.parent.name:22s} " + " | ".join(line), flush=True)
    for on in (False, True):
        a = np.array(scores[on])
        print(f"driver_gaze {'on ' if on else 'off'}: mean r {np.nanmean(a[:, 0]):+.3f} (median "
              f"{np.nanmedian(a[:, 0]):+.3f}), mean slope {np.nanmean(a[:, 1]):+.3f} over {len(a)} pairs")


if __name__ == "__main__":
    main()
