"""Robustness, false positives, quality and speed of the provenance watermark.

    .venv/bin/python benchmarks/watermark_robustness.py [--videos 24] [--seconds 2] [--corpus DIR]
        [--corpus-frames 40] [--no-corpus] [--candidates] [--strength S]

Makes ``--videos`` generated-looking clips (scikit-image photos moved by smooth head-like motion; astronaut
first, several sizes), each with its own random payload; marks every frame, writes them with ``VideoWriter``
(crf 18, as the pipeline does), then decodes each video (per-video decoding, the frames ``verify_file`` would
use) after each attack:

    none       the written mp4 as it is
    crf23      re-encoded with libx264 at crf 23
    crf28      re-encoded with libx264 at crf 28
    scale0.5   downscaled to 0.5x (area) and back up (bilinear)
    crop10     10% of the width and height cut off the borders (unevenly), decoded at the smaller size
    gif        converted to a 256-colour GIF (Pillow, per-frame adaptive palette, Floyd-Steinberg dithering)
               and read back with FFmpeg

and prints the per-video detection rate (right payload), the single-frame rate, and the weakest pilot score.
Then the false-positive rate on every real clip under the corpus (``videos/**/*.mp4``, ``--corpus-frames``
frames each, through ``verify_file``), PSNR, and embedding/decoding time per frame at 256x256 and 1280x720.

``--candidates`` first compares the methods we measured (ours, blind-watermark's DWT-DCT-SVD and
invisible-watermark's dwtDctSvd) on a few clips; it needs those packages importable, e.g.
``pip install --no-deps --target /tmp/wmcands blind-watermark==0.4.4 invisible-watermark==0.2.0 PyWavelets``
and ``PYTHONPATH=/tmp/wmcands``. Both take the same 64-bit CRC-checked payload, with per-video soft averaging.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from talkinghead.data.examples import affine_motion, astronaut, warp_video
from talkinghead.io.video import VideoWriter, read_video
from talkinghead.provenance.verify import verify_file
from talkinghead.provenance.watermark import Payload, decode_frames, decode_image, embed, psnr

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
ATTACKS = ("none", "crf23", "crf28", "scale0.5", "crop10", "gif")


# ------------------------------------------------------------------------------------------------ test clips


def _sources() -> list[tuple[np.ndarray, tuple[float, float]]]:
    """Photos and the point to centre the motion on (a face where there is one)."""
    from skimage import data

    out: list[tuple[np.ndarray, tuple[float, float]]] = [(astronaut(), (225.0, 135.0))]
    for name, center in (("chelsea", (150.0, 120.0)), ("coffee", (300.0, 200.0)), ("rocket", (270.0, 200.0))):
        img = getattr(data, name)()
        out.append((np.ascontiguousarray(img[:, :, :3]), center))
    return out


def make_clips(n: int, seconds: float, fps: float = 25.0, seed: int = 0,
               sizes: Sequence[int] = (256, 320, 384)) -> list[list[np.ndarray]]:
    """``n`` clips of ``(S, S, 3) uint8`` frames (S cycling through ``sizes``; 720 gives 1280x720 frames);
    clip 0 is the astronaut."""
    rng = np.random.default_rng(seed)
    sources = _sources()
    clips = []
    for i in range(n):
        img, (cx, cy) = sources[0] if i % 2 == 0 else sources[(i // 2) % len(sources)]
        size = sizes[i % len(sizes)]
        amp = 1.0 if i == 0 else float(rng.uniform(0.3, 1.5))
        center = (cx + float(rng.uniform(-20, 20)), cy + float(rng.uniform(-20, 20))) if i else (cx, cy)
        motion = affine_motion(int(round(seconds * fps)), fps, amplitude=amp)
        if size == 720:
            frames, _ = warp_video(img, motion, center, 1280)
            frames = [np.ascontiguousarray(f[280:1000]) for f in frames]
        else:
            frames, _ = warp_video(img, motion, center, size)
        clips.append(frames)
    return clips


# ---------------------------------------------------------------------------------------------------- attacks


def write_mp4(path: Path, frames: Sequence[np.ndarray], crf: int = 18, fps: float = 25.0) -> Path:
    with VideoWriter(path, fps=fps, crf=crf) as w:
        for f in frames:
            w.write(f)
    return path


def _gif_roundtrip(frames: Sequence[np.ndarray], path: Path) -> list[np.ndarray]:
    images = [
        Image.fromarray(f).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        for f in frames
    ]
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0, optimize=False)
    back, _ = read_video(path)
    return back


def attack(name: str, marked_mp4: Path, work: Path) -> list[np.ndarray]:
    """Frames of ``marked_mp4`` after the named attack (see the module docstring)."""
    frames, _ = read_video(marked_mp4)
    if name == "none":
        return frames
    if name in ("crf23", "crf28"):
        out = write_mp4(work / f"{name}.mp4", frames, crf=int(name[3:]))
        return read_video(out)[0]
    if name == "scale0.5":
        h, w = frames[0].shape[:2]
        half = [cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for f in frames]
        return [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in half]
    if name == "crop10":
        h, w = frames[0].shape[:2]
        top, left = int(0.07 * h), int(0.03 * w)
        bottom, right = h - (int(0.1 * h) - top), w - (int(0.1 * w) - left)
        return [np.ascontiguousarray(f[top:bottom, left:right]) for f in frames]
    if name == "gif":
        return _gif_roundtrip(frames, work / "clip.gif")
    raise ValueError(name)


# ---------------------------------------------------------------------------------------------------- methods


@dataclass
class Method:
    name: str
    embed: Callable[[np.ndarray, Payload], np.ndarray]
    decode: Callable[[Sequence[np.ndarray]], tuple[Payload | None, float, float]]
    """Per-video decoding: the payload (``None``: no valid mark), the pilot score and the confidence (NaN if
    the method has none)."""
    decode_one: Callable[[np.ndarray], Payload | None]


def _ours() -> Method:
    def dec(frames: Sequence[np.ndarray]) -> tuple[Payload | None, float, float]:
        det = decode_frames(_spread(frames, 60))
        return det.payload, det.sync_z, det.confidence

    return Method("ours (spread-spectrum)", embed, dec, lambda f: decode_image(f).payload)


def _spread(frames: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    """At most ``n`` frames spread evenly, as ``verify_file`` picks them."""
    stride = max(1, -(-len(frames) // n))
    return list(frames[::stride][:n])


def _blind_watermark() -> Method:
    from blind_watermark import WaterMark, bw_notes  # type: ignore[import-not-found]

    bw_notes.close()

    def emb(frame: np.ndarray, payload: Payload) -> np.ndarray:
        bwm = WaterMark(password_img=1, password_wm=1)
        bwm.read_img(img=np.ascontiguousarray(frame[:, :, ::-1]))
        bwm.read_wm(payload.to_bits().astype(bool), mode="bit")
        out = bwm.embed()
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)[:, :, ::-1].copy()

    def soft(frame: np.ndarray) -> np.ndarray:
        bwm = WaterMark(password_img=1, password_wm=1)
        bwm.wm_size = 64
        wm_avg = bwm.bwm_core.extract(img=np.ascontiguousarray(frame[:, :, ::-1]), wm_shape=64)
        return bwm.extract_decrypt(wm_avg=wm_avg)

    def dec(frames: Sequence[np.ndarray]) -> tuple[Payload | None, float, float]:
        s = np.mean([soft(f) for f in _spread(frames, 60)], axis=0)
        return Payload.from_bits((s > 0.5).astype(np.uint8)), math.nan, math.nan

    return Method("blind-watermark 0.4.4 (DWT-DCT-SVD)", emb, dec, lambda f: dec([f])[0])


def _invisible_watermark() -> Method:
    """invisible-watermark's dwtDctSvd with its defaults (the U channel; its Y setting wraps uint8 values)."""
    import pywt  # type: ignore[import-not-found]
    from imwatermark import WatermarkEncoder  # type: ignore[import-not-found]
    from imwatermark.dwtDctSvd import EmbedDwtDctSvd  # type: ignore[import-not-found]

    channel, scales = 1, [0, 36, 0]

    def emb(frame: np.ndarray, payload: Payload) -> np.ndarray:
        enc = WatermarkEncoder()
        enc.set_watermark("bits", payload.to_bits().tolist())
        out = enc.encode(np.ascontiguousarray(frame[:, :, ::-1]), "dwtDctSvd", scales=scales)
        return np.ascontiguousarray(out[:, :, ::-1])

    def soft(frame: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        e = EmbedDwtDctSvd(watermarks=[], wmLen=64, scales=scales)
        row, col = bgr.shape[:2]
        yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
        ca1, _ = pywt.dwt2(yuv[: row // 4 * 4, : col // 4 * 4, channel], "haar")
        scores = e.decode_frame(ca1, 36, [[] for _ in range(64)])
        return np.array([np.mean(s) for s in scores])

    def dec(frames: Sequence[np.ndarray]) -> tuple[Payload | None, float, float]:
        s = np.mean([soft(f) for f in _spread(frames, 60)], axis=0)
        return Payload.from_bits((s > 0.5).astype(np.uint8)), math.nan, math.nan

    return Method("invisible-watermark 0.2.0 (dwtDctSvd)", emb, dec, lambda f: dec([f])[0])


# ------------------------------------------------------------------------------------------------ measurement


@dataclass
class Row:
    attack: str
    videos: int
    detected: int
    wrong: int
    frame_rate: float
    min_z: float
    min_conf: float


def robustness(method: Method, clips: list[list[np.ndarray]], attacks: Sequence[str], work: Path,
               single_frames: int = 5) -> tuple[list[Row], list[float]]:
    """Per-video (and single-frame) detection after each attack; also returns every frame's PSNR."""
    hits = {a: [0, 0, 0, 0] for a in attacks}  # detected, wrong, frames ok, frames tried
    zs: dict[str, list[float]] = {a: [] for a in attacks}
    confs: dict[str, list[float]] = {a: [] for a in attacks}
    psnrs: list[float] = []
    for i, clip in enumerate(clips):
        payload = Payload.new()
        marked = [method.embed(f, payload) for f in clip]
        psnrs += [psnr(a, b) for a, b in zip(clip, marked)]
        d = work / f"v{i}"
        d.mkdir(exist_ok=True)
        mp4 = write_mp4(d / "marked.mp4", marked)
        for a in attacks:
            frames = attack(a, mp4, d)
            got, z, conf = method.decode(frames)
            if got == payload:
                hits[a][0] += 1
            elif got is not None:
                hits[a][1] += 1
            zs[a].append(z)
            confs[a].append(conf)
            for f in frames[:: max(1, len(frames) // single_frames)][:single_frames]:
                hits[a][2] += method.decode_one(f) == payload
                hits[a][3] += 1
    rows = [
        Row(a, len(clips), hits[a][0], hits[a][1], hits[a][2] / max(hits[a][3], 1), min(zs[a]),
            min(confs[a]))
        for a in attacks
    ]
    return rows, psnrs


def timing(method: Method, size: tuple[int, int], n: int = 10) -> tuple[float, float]:
    """Embedding and (per-video) decoding milliseconds per frame at ``size`` = (H, W)."""
    h, w = size
    frames, _ = warp_video(astronaut(), affine_motion(n), (225.0, 135.0), max(h, w))
    frames = [np.ascontiguousarray(f[:h, :w]) for f in frames]
    payload = Payload.new()
    method.embed(frames[0], payload)  # warm caches
    t0 = time.perf_counter()
    marked = [method.embed(f, payload) for f in frames]
    t1 = time.perf_counter()
    method.decode(marked)
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n


def false_positives(corpus: Path, frames: int) -> tuple[int, int, list[str], list[float]]:
    clips = sorted((corpus / "videos").glob("**/*.mp4"))
    flagged, zs = [], []
    for p in clips:
        r = verify_file(p, max_frames=frames)
        if r.watermarked:
            flagged.append(str(p))
        zs.append(r.detection.sync_z if r.detection else math.nan)
    return len(clips), len(flagged), flagged, zs


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"{'attack':<10} {'videos':>6} {'detected':>9} {'rate':>7} {'wrong':>6} {'1-frame':>8} {'min z':>7} "
          f"{'min conf':>9}")
    for r in rows:
        print(f"{r.attack:<10} {r.videos:>6} {r.detected:>9} {100 * r.detected / r.videos:>6.1f}% {r.wrong:>6} "
              f"{100 * r.frame_rate:>7.1f}% {r.min_z:>7.1f} {r.min_conf:>9.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--sizes", default="256,320,384", help="clip sizes (S for SxS; 720 for 1280x720)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--corpus-frames", type=int, default=40)
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--candidates", action="store_true", help="compare with the PyPI candidates first")
    ap.add_argument("--candidate-videos", type=int, default=4)
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--strength", type=float, default=None, help="embedding strength (RMS, 0-255 scale)")
    args = ap.parse_args()
    attacks = [a for a in args.attacks.split(",") if a]

    ours = _ours()
    if args.strength is not None:
        s = args.strength
        ours = Method(ours.name, lambda f, p: embed(f, p, strength=s), ours.decode, ours.decode_one)

    with tempfile.TemporaryDirectory(prefix="wm-bench-") as tmp:
        work = Path(tmp)
        if args.candidates:
            clips = make_clips(args.candidate_videos, args.seconds)
            print(f"candidates: {len(clips)} clips of {len(clips[0])} frames, per-video decoding of <= 60 frames")
            print(f"{'method':<44} {'PSNR dB':>8} {'emb ms':>7} {'dec ms':>7}  " + " ".join(f"{a:>8}" for a in attacks)
                  + "  (per-video detection %, 1-frame % in brackets)")
            for make in (_ours, _blind_watermark, _invisible_watermark):
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        m = make()
                except ImportError as exc:
                    print(f"{'(a candidate)':<40} not installed ({exc.name})")
                    continue
                if m.name.startswith("ours"):
                    m = ours
                rows, ps = robustness(m, clips, attacks, work)
                e_ms, d_ms = timing(m, (256, 256), n=5)
                cells = " ".join(f"{100 * r.detected / r.videos:>3.0f}({100 * r.frame_rate:>3.0f})" for r in rows)
                print(f"{m.name:<44} {statistics.mean(ps):>8.2f} {e_ms:>7.1f} {d_ms:>7.1f}  {cells}", flush=True)

        sizes = [int(x) for x in args.sizes.split(",")]
        clips = make_clips(args.videos, args.seconds, seed=1, sizes=sizes)
        rows, ps = robustness(ours, clips, attacks, work)
        print_rows(f"robustness: {len(clips)} clips x {len(clips[0])} frames (sizes {args.sizes}), "
                   "per-video decoding (rate: right payload; 1-frame: single frames decoded alone)", rows)
        print(f"\nPSNR marked vs unmarked: mean {statistics.mean(ps):.2f} dB, min {min(ps):.2f} dB "
              f"over {len(ps)} frames")

    print("\ntime per frame (ms):")
    for size in ((256, 256), (720, 1280)):
        e_ms, d_ms = timing(ours, size)
        print(f"  {size[1]}x{size[0]}: embed {e_ms:.1f}, decode {d_ms:.1f}")

    if not args.no_corpus:
        if not (args.corpus / "videos").is_dir():
            print(f"\nfalse positives: skipped ({args.corpus}/videos not found)")
        else:
            t0 = time.perf_counter()
            n, k, flagged, zs = false_positives(args.corpus, args.corpus_frames)
            zz = np.array(zs)
            print(f"\nfalse positives on real unmarked clips: {k}/{n} flagged ({args.corpus_frames} frames each, "
                  f"{time.perf_counter() - t0:.0f} s); pilot z: median {np.nanmedian(zz):.1f}, max {np.nanmax(zz):.1f}")
            for p in flagged:
                print(f"  FLAGGED {p}")


if __name__ == "__main__":
    main()
