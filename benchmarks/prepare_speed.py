"""Speed of `talkinghead prepare` (tracking + 256² crops) on real source videos.

    .venv/bin/python benchmarks/prepare_speed.py [SRC ...] [--workers 2] [--size 256] [--limit N] [--keep DIR]

SRC defaults to ../shared/corpus/videos. Prepares into a temporary folder (or --keep DIR) and prints clips
kept/skipped, frames read and written, wall time, frames/s (frames read, i.e. source frames tracked and cropped),
and the dataset's size on disk. A second line times the stages in one process on the first clip.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from talkinghead.config import PrepareConfig
from talkinghead.data.prepare import prepare_dataset
from talkinghead.data.sources import find_sources
from talkinghead.faces.crop import crop_image, face_crop_box
from talkinghead.faces.track import FaceTracker
from talkinghead.io.video import read_video

ROOT = Path(__file__).resolve().parents[1]


def stage_times(path: str, size: int) -> str:
    import cv2

    t0 = time.perf_counter()
    frames, info = read_video(path)
    t1 = time.perf_counter()
    tracker = FaceTracker(fps=info.fps)
    lmk = [tracker.update(f).landmarks for f in frames]
    t2 = time.perf_counter()
    box = face_crop_box(np.stack([x for x in lmk if x is not None]))
    for f in frames:
        cv2.imencode(".jpg", crop_image(f, box, size), [cv2.IMWRITE_JPEG_QUALITY, 90])
    t3 = time.perf_counter()
    n = len(frames)
    return (f"one process, {Path(path).name} ({info.width}x{info.height}, {n} frames): decode {1000 * (t1 - t0) / n:.2f} ms, "
            f"track {1000 * (t2 - t1) / n:.2f} ms ({tracker.detections} detections), crop+JPEG {1000 * (t3 - t2) / n:.2f} ms "
            f"per frame → {n / (t3 - t0):.0f} frames/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="*", default=[str(ROOT.parent / "shared" / "corpus" / "videos")])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--limit", type=int, default=0, help="only the first N clips (a copy of their list)")
    ap.add_argument("--keep", help="write the dataset here instead of a temporary folder")
    args = ap.parse_args()
    srcs = args.src
    tmp = Path(tempfile.mkdtemp(prefix="th-bench-"))
    if args.limit:
        items = [it for it in find_sources(srcs) if it.kind == "video"][: args.limit]
        manifest = tmp / "subset.csv"
        manifest.write_text("path,identity\n" + "".join(f"{it.paths[0]},{it.identity}\n" for it in items))
        srcs = [str(manifest)]
    out = Path(args.keep) if args.keep else tmp / "dataset"
    try:
        first = next(it for it in find_sources(srcs) if it.kind == "video")
        print(stage_times(first.paths[0], args.size))
        cfg = PrepareConfig(size=args.size, workers=args.workers)
        s = prepare_dataset(srcs, out, cfg, progress=False, log=lambda m: print("  input problem:", m))
        print(f"{s.clips_total} clips: {s.clips_kept} kept, {s.clips_skipped} skipped, {s.clips_error} errors "
              f"({s.clips_resumed} resumed); {s.frames_in} frames read, {s.frames_out} written, "
              f"{s.frames_no_face} without a face")
        print(f"{args.workers} worker(s): {s.seconds:.1f} s → {s.frames_per_second:.1f} frames/s; "
              f"dataset {s.bytes_on_disk / 2**20:.1f} MiB ({s.bytes_on_disk / max(1, s.frames_out) / 1024:.1f} KiB/frame)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
