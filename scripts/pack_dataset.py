"""Carry a prepared dataset compactly: its source videos plus the tracks, instead of its JPEG frames.

A prepared dataset holds every kept frame as a 256² JPEG (the corpus's 26 MB of training videos become ~280 MB).
To train on another machine (a GPU machine with a small upload limit, no dlib and no package index), ``pack``
keeps only what ``prepare`` derived (landmarks, crop boxes, frame numbers, metadata) and the source videos it
read; ``unpack`` there decodes the videos with OpenCV, cuts the same crops with the same code and writes the same
zips. Nothing is re-detected, so the landmarks are the original ones; the frames differ only by the decoder's
colour conversion and the second JPEG encoding (``unpack --check DATASET`` measures it against the original). The
audio features are not carried: unpacked clips are marked as having none.

    .venv/bin/python scripts/pack_dataset.py pack DATASET OUT [--split train] [--sources-root .]
    python scripts/pack_dataset.py unpack OUT DATASET2 [--workers 16] [--check DATASET]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # usable from a checkout without installing (e.g. on a bare GPU machine)

from talkinghead.data.format import (  # noqa: E402
    clip_path,
    frame_member,
    jsonl_text,
    npy_load,
    read_jsonl,
    write_clip_tracks,
)
from talkinghead.faces.crop import CropBox, crop_image  # noqa: E402
from talkinghead.io.atomic import atomic_path  # noqa: E402

NO_AUDIO = {"present": False, "reason": "not carried by scripts/pack_dataset.py"}
"""The audio features are not packed (frames and tracks only), so unpacked clips say they have none."""

LANDMARK_SCALE = 64
"""Landmarks are packed as int16 in 1/64 crop pixel (crop coordinates stay within ±512 px)."""


def _member(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    return npy_load(zf.read(name))


def pack(dataset: Path, out: Path, splits: list[str], sources_root: Path) -> None:
    records = [r for r in read_jsonl(dataset / "manifest.jsonl")
               if (r.get("split") or "train") in splits and r.get("kind", "video") == "video"]
    (out / "tracks").mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    kept, video_bytes, track_bytes = [], 0, 0
    for r in records:
        src = Path(r["sources"][0])
        src = src if src.is_absolute() else sources_root / src
        if not src.is_file():
            print(f"skipped {r['key']}: its source video {src} is missing", file=sys.stderr)
            continue
        with zipfile.ZipFile(clip_path(dataset, r["key"])) as zf:
            lmk = _member(zf, "landmarks.npy")
            if np.abs(lmk).max() * LANDMARK_SCALE >= 32767:
                raise SystemExit(f"{r['key']}: landmarks out of the packable range")
            arrays = {"landmarks": np.round(lmk * LANDMARK_SCALE).astype(np.int16),
                      "boxes": _member(zf, "boxes.npy"), "frame_ids": _member(zf, "frame_ids.npy")}
            meta = zf.read("meta.json").decode()
        name = r["key"].replace("/", "__")
        video = out / "videos" / f"{name}{src.suffix}"
        shutil.copyfile(src, video)
        np.savez_compressed(out / "tracks" / f"{name}.npz", meta=np.array(meta), **arrays)
        video_bytes += video.stat().st_size
        track_bytes += (out / "tracks" / f"{name}.npz").stat().st_size
        kept.append({**r, "packed_video": video.name})
    shutil.copyfile(dataset / "dataset.json", out / "dataset.json")
    (out / "manifest.jsonl").write_text(jsonl_text(kept))
    print(f"packed {len(kept)} clip(s) of {', '.join(splits)}: videos {video_bytes / 2**20:.1f} MiB, "
          f"tracks {track_bytes / 2**20:.1f} MiB -> {out}")


def _unpack_clip(job: tuple[str, str, str, int, int]) -> tuple[str, int, str]:
    packed, record_json, dest, size, quality = job
    r = json.loads(record_json)
    name = r["key"].replace("/", "__")
    tracks = np.load(Path(packed) / "tracks" / f"{name}.npz")
    ids = tracks["frame_ids"].astype(np.int64)
    boxes = tracks["boxes"].astype(np.float32)
    wanted = {int(f): i for i, f in enumerate(ids)}
    cap = cv2.VideoCapture(str(Path(packed) / "videos" / r["packed_video"]))
    if not cap.isOpened():
        return r["key"], 0, "cannot open the video"
    crops: dict[int, bytes] = {}
    index = 0
    last = int(ids.max())
    while index <= last:
        ok, bgr = cap.read()
        if not ok:
            break
        if index in wanted:
            i = wanted[index]
            x0, y0, side = (float(v) for v in boxes[i])
            crop = crop_image(bgr[:, :, ::-1], CropBox(x0, y0, side), size)
            ok, buf = cv2.imencode(".jpg", crop[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            crops[i] = buf.tobytes()
        index += 1
    cap.release()
    if len(crops) != len(ids):
        return r["key"], 0, f"decoded {len(crops)} of {len(ids)} frames"
    with atomic_path(clip_path(Path(dest), r["key"]), suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i in range(len(ids)):
                zf.writestr(frame_member(i), crops[i])
            write_clip_tracks(zf, tracks["landmarks"].astype(np.float32) / LANDMARK_SCALE, boxes, ids,
                              {**json.loads(str(tracks["meta"])), "audio": NO_AUDIO})
    return r["key"], len(ids), ""


def unpack(packed: Path, dest: Path, workers: int) -> list[dict[str, Any]]:
    info = json.loads((packed / "dataset.json").read_text())
    size, quality = int(info["size"]), int(info.get("config", {}).get("jpeg_quality", 90))
    records = read_jsonl(packed / "manifest.jsonl")
    for r in records:
        clip_path(dest, r["key"]).parent.mkdir(parents=True, exist_ok=True)
    jobs = [(str(packed), json.dumps(r), str(dest), size, quality) for r in records]
    t0 = time.perf_counter()
    done, frames = [], 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for (key, n, err), r in zip(pool.map(_unpack_clip, jobs), records):
            if err:
                print(f"skipped {key}: {err}", file=sys.stderr)
                continue
            frames += n
            done.append({**{k: v for k, v in r.items() if k != "packed_video"}, "audio": NO_AUDIO})
    shutil.copyfile(packed / "dataset.json", dest / "dataset.json")
    (dest / "manifest.jsonl").write_text(jsonl_text(done))
    print(f"unpacked {len(done)} clip(s), {frames} frames in {time.perf_counter() - t0:.1f} s -> {dest}")
    return done


def check(unpacked: Path, original: Path, records: list[dict[str, Any]]) -> None:
    """Mean absolute difference (grey levels) of every 10th frame against the original dataset's."""
    diffs = []
    for r in records:
        with zipfile.ZipFile(clip_path(unpacked, r["key"])) as a, zipfile.ZipFile(clip_path(original, r["key"])) as b:
            n = len([m for m in a.namelist() if m.startswith("frames/")])
            for i in range(0, n, 10):
                x = cv2.imdecode(np.frombuffer(a.read(frame_member(i)), np.uint8), cv2.IMREAD_COLOR)
                y = cv2.imdecode(np.frombuffer(b.read(frame_member(i)), np.uint8), cv2.IMREAD_COLOR)
                diffs.append(float(np.abs(x.astype(np.float32) - y.astype(np.float32)).mean()))
            la, lb = _member(a, "landmarks.npy"), _member(b, "landmarks.npy")
            if np.abs(la - lb).max() > 1.0 / LANDMARK_SCALE:
                raise SystemExit(f"{r['key']}: landmarks differ from the original")
    d = np.array(diffs)
    print(f"check: {len(d)} frames, mean |difference| {d.mean():.2f} grey levels (max {d.max():.2f}); landmarks equal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--split", action="append", help="split(s) to pack (default: train)")
    p.add_argument("--sources-root", type=Path, default=Path("."),
                   help="folder the manifest's relative source paths start from (prepare's working folder)")
    p = sub.add_parser("unpack")
    p.add_argument("packed", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--check", type=Path, metavar="DATASET", help="compare with the original prepared dataset")
    args = ap.parse_args()
    if args.cmd == "pack":
        pack(args.dataset, args.out, args.split or ["train"], args.sources_root)
    else:
        done = unpack(args.packed, args.dest, args.workers)
        if args.check:
            check(args.dest, args.check, done)


if __name__ == "__main__":
    main()
