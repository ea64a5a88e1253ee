"""``talkinghead prepare``: raw videos and photos → a dataset of face crops with landmarks (see :mod:`.format`).

Per clip: track the face (:class:`~talkinghead.faces.FaceTracker`; a video's track then smoothed over time,
centred: :func:`~talkinghead.faces.smooth.smooth_track`), drop frames without a face, choose one
stable square crop for the clip, write the 256² crops as JPEG and the landmarks in crop coordinates. Each clip
is written atomically, so an interrupted run resumes where it stopped. Clips are split over worker processes,
and over machines with ``shard=(i, n)``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from talkinghead.config import PrepareConfig, to_dict
from talkinghead.data.audio import video_audio_features
from talkinghead.data.format import (
    FORMAT,
    FORMAT_VERSION,
    clip_path,
    frame_member,
    jsonl_text,
    npy_bytes,
    npy_load,
    read_jsonl,
    skip_path,
    write_clip_tracks,
)
from talkinghead.data.sources import SourceItem, find_sources
from talkinghead.errors import InputError, NoFaceError
from talkinghead.faces.crop import CropBox, crop_image, face_crop_box, to_crop_coords
from talkinghead.faces.detect import FaceDetector
from talkinghead.faces.landmarks import detect_landmarks
from talkinghead.faces.smooth import smooth_track
from talkinghead.faces.track import FaceTracker
from talkinghead.io.atomic import atomic_path, atomic_write_text
from talkinghead.io.images import read_image
from talkinghead.io.video import VideoReader

_BUFFER_BYTES = 768 * 2**20  # decoded frames kept for the crop pass; longer clips are decoded twice


@dataclass
class ClipOutcome:
    """What happened to one clip: ``status`` is "kept", "skipped" (too few usable frames) or "error"."""

    key: str
    status: str
    record: dict[str, Any]
    frames_in: int = 0
    frames_out: int = 0
    messages: list[str] = field(default_factory=list)
    """One line per bad input file (shown on stderr)."""


def _choose_frames(with_face: np.ndarray, stride: int, max_frames: int) -> np.ndarray:
    """Frame numbers to keep: those with a face on the stride grid, then at most ``max_frames`` evenly spaced."""
    chosen = with_face[with_face % max(1, stride) == 0]
    if max_frames and len(chosen) > max_frames:
        chosen = chosen[np.round(np.linspace(0, len(chosen) - 1, max_frames)).astype(int)]
    return chosen


def _write_clip(
    out: Path,
    item: SourceItem,
    crops: Iterator[tuple[np.ndarray, np.ndarray, CropBox, int]],
    meta: dict[str, Any],
    quality: int,
    audio: Callable[[np.ndarray], tuple[np.ndarray | None, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Write crops ``(image, landmarks, box, frame_id)`` into the clip's zip atomically; returns the meta.

    ``audio(frame_ids)`` gives the audio features of the written frames (or None) and their meta entry.
    """
    lmks, boxes, ids = [], [], []
    dest = clip_path(out, item.key)
    with atomic_path(dest, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, (img, lmk, box, fid) in enumerate(crops):
                ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
                if not ok:  # pragma: no cover - OpenCV cannot fail on a uint8 RGB image
                    raise RuntimeError("JPEG encoding failed")
                zf.writestr(frame_member(i), buf.tobytes())
                lmks.append(lmk)
                boxes.append(box.as_array())
                ids.append(fid)
            meta = {**meta, "n_frames": len(ids)}
            feats, meta["audio"] = audio(np.asarray(ids, np.int64)) if audio else (None, {"present": False,
                                                                                          "reason": "photos"})
            write_clip_tracks(zf, np.asarray(lmks), np.asarray(boxes), np.asarray(ids), meta, feats)
    return meta


def _base_meta(item: SourceItem, cfg: PrepareConfig) -> dict[str, Any]:
    return {
        "key": item.key,
        "identity": item.identity,
        "kind": item.kind,
        "split": item.split,
        "sources": list(item.paths),
        "size": cfg.size,
        **({"extra": item.extra} if item.extra else {}),
    }


def _prepare_video(item: SourceItem, cfg: PrepareConfig, out: Path) -> ClipOutcome:
    path = item.paths[0]
    reader = VideoReader(path)
    info = reader.info
    offline = cfg.track_smoothing > 0  # smooth the whole track afterwards, centred, instead of causally
    tracker = FaceTracker(replace(cfg.tracker, smoothing=0.0) if offline else cfg.tracker, fps=info.fps)
    landmarks: dict[int, np.ndarray] = {}
    buffer: dict[int, np.ndarray] = {}
    buffered = 0
    keep_buffer = True
    n = 0
    with reader:
        for frame, res in tracker.track(reader):
            if res.landmarks is not None:
                landmarks[res.index] = res.landmarks
                if keep_buffer and res.index % max(1, cfg.stride) == 0:
                    buffer[res.index] = frame
                    buffered += frame.nbytes
                    if buffered > _BUFFER_BYTES:
                        keep_buffer, buffer = False, {}
            n += 1
    meta = _base_meta(item, cfg)
    meta.update(
        fps=info.fps / max(1, cfg.stride),
        source_fps=info.fps,
        source_size=[info.width, info.height],
        source_frames=n,
        frames_with_face=len(landmarks),
        frames_no_face=n - len(landmarks),
        truncated=reader.truncated,
        detections=tracker.detections,
    )
    messages = [f"{path}: stream is truncated after frame {n}; kept what decoded"] if reader.truncated else []
    if not landmarks:
        raise NoFaceError(f"{path}: no face found in {n} frame(s)")
    if offline:
        ids = np.array(sorted(landmarks), dtype=int)
        landmarks = dict(zip(ids.tolist(), smooth_track(ids, np.stack([landmarks[i] for i in ids]),
                                                        cfg.track_smoothing), strict=True))
    chosen = _choose_frames(np.array(sorted(landmarks), dtype=int), cfg.stride, cfg.max_frames)
    if len(chosen) < cfg.min_frames:
        reason = f"too few usable frames: {len(chosen)} with a face (of {n}), need {cfg.min_frames}"
        return ClipOutcome(item.key, "skipped", {**meta, "reason": reason}, n, 0, messages)
    box = face_crop_box(np.stack([landmarks[i] for i in chosen]), cfg.margin, cfg.shift_up)
    meta["crop_box"] = [round(v, 2) for v in box.as_array().tolist()]

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        if keep_buffer:
            for i in chosen:
                yield int(i), buffer[int(i)]
            return
        wanted = set(int(i) for i in chosen)
        with VideoReader(path) as again:
            for i, frame in enumerate(again):
                if i in wanted:
                    yield i, frame

    def crops() -> Iterator[tuple[np.ndarray, np.ndarray, CropBox, int]]:
        for i, frame in frames():
            yield crop_image(frame, box, cfg.size), to_crop_coords(landmarks[i], box, cfg.size), box, i

    meta = _write_clip(out, item, crops(), meta, cfg.jpeg_quality,
                       audio=lambda ids: video_audio_features(path, ids, info.fps))
    return ClipOutcome(item.key, "kept", meta, n, meta["n_frames"], messages)


def add_audio(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a clip prepared before audio features existed: rewrite its zip (atomically) with ``audio.npy``
    and the ``audio`` meta entry, from the source video; returns the updated record."""
    zpath = clip_path(out, record["key"])
    with zipfile.ZipFile(zpath) as zf:
        meta = json.loads(zf.read("meta.json"))
        if record.get("kind", meta.get("kind")) != "video":
            feats, info = None, {"present": False, "reason": "photos"}
        elif not meta.get("sources") or not Path(meta["sources"][0]).is_file():
            feats, info = None, {"present": False, "reason": "source video not found for the upgrade"}
        else:
            ids = npy_load(zf.read("frame_ids.npy")).astype(np.int64)
            feats, info = video_audio_features(meta["sources"][0], ids, float(meta.get("source_fps") or meta["fps"]))
        meta["audio"] = info
        with atomic_path(zpath, suffix=".zip") as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as dst:
                for member in zf.infolist():
                    if member.filename not in ("meta.json", "audio.npy"):
                        dst.writestr(member, zf.read(member.filename))
                if feats is not None:
                    dst.writestr("audio.npy", npy_bytes(feats.astype(np.float16)))
                dst.writestr("meta.json", json.dumps(meta, indent=1, sort_keys=True))
    return {**record, "audio": info}


def _prepare_photos(item: SourceItem, cfg: PrepareConfig, out: Path) -> ClipOutcome:
    detector = FaceDetector(max_side=1024)
    found: list[tuple[int, np.ndarray, np.ndarray, CropBox]] = []
    messages: list[str] = []
    for i, path in enumerate(item.paths):
        try:
            img = read_image(path)
            lmk = detect_landmarks(img, cfg.tracker.face_index, detector, source=path)
        except InputError as exc:
            messages.append(str(exc))
            continue
        found.append((i, img, lmk, face_crop_box(lmk, cfg.margin, cfg.shift_up)))
    meta = _base_meta(item, cfg)
    meta.update(fps=0.0, source_frames=len(item.paths), frames_with_face=len(found))
    meta["frames_no_face"] = len(item.paths) - len(found)
    need = min(cfg.min_frames, 2)
    if not found:
        raise NoFaceError(f"{item.key}: no face found in {len(item.paths)} photo(s)")
    if len(found) < need:
        reason = f"too few usable photos: {len(found)} with a face, need {need}"
        return ClipOutcome(item.key, "skipped", {**meta, "reason": reason}, len(item.paths), 0, messages)
    crops = (
        (crop_image(img, box, cfg.size), to_crop_coords(lmk, box, cfg.size), box, i) for i, img, lmk, box in found
    )
    meta = _write_clip(out, item, crops, meta, cfg.jpeg_quality)
    return ClipOutcome(item.key, "kept", meta, len(item.paths), meta["n_frames"], messages)


def prepare_clip(item: SourceItem, cfg: PrepareConfig, out: Path) -> ClipOutcome:
    """Prepare one clip; bad inputs become an "error" outcome with a one-line reason, never an exception."""
    try:
        if item.kind == "video":
            outcome = _prepare_video(item, cfg, out)
        else:
            outcome = _prepare_photos(item, cfg, out)
    except InputError as exc:
        meta = {**_base_meta(item, cfg), "reason": str(exc)}
        outcome = ClipOutcome(item.key, "error", meta, messages=[str(exc)])
    except Exception as exc:  # keep the batch going; the report keeps the reason
        reason = f"{item.paths[0]}: internal error ({exc.__class__.__name__}: {exc})"
        meta = {**_base_meta(item, cfg), "reason": reason, "traceback": traceback.format_exc(limit=5)}
        outcome = ClipOutcome(item.key, "error", meta, messages=[reason])
    if outcome.status != "kept":
        atomic_write_text(skip_path(out, item.key), json.dumps({**outcome.record, "status": outcome.status}))
    outcome.record["status"] = outcome.status
    return outcome


def _previous(out: Path, item: SourceItem) -> dict[str, Any] | None:
    """The record of a clip an earlier run finished, or None."""
    zpath = clip_path(out, item.key)
    if zpath.is_file():
        try:
            with zipfile.ZipFile(zpath) as zf:
                rec = json.loads(zf.read("meta.json"))
            rec["status"] = "kept"
            return rec
        except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError):
            zpath.unlink(missing_ok=True)  # damaged: do it again
            return None
    spath = skip_path(out, item.key)
    if spath.is_file():
        try:
            return json.loads(spath.read_text())
        except (OSError, json.JSONDecodeError):
            return None
    return None


@dataclass
class PrepareSummary:
    clips_total: int = 0
    clips_kept: int = 0
    clips_skipped: int = 0
    clips_error: int = 0
    clips_resumed: int = 0
    frames_in: int = 0
    frames_out: int = 0
    frames_no_face: int = 0
    seconds: float = 0.0
    bytes_on_disk: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames_in / self.seconds if self.seconds > 0 else 0.0


def _reason_class(reason: str) -> str:
    for key in ("too few usable", "no face found", "file is empty", "not a readable video", "no video stream",
                "decoding failed", "no decodable frame", "cannot read image", "internal error"):
        if key in reason:
            return key
    return "other"


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cv2.setNumThreads(1)


def _run_parallel(
    jobs: list[SourceItem], cfg: PrepareConfig, out: Path, workers: int, on_done: Callable[[ClipOutcome], None]
) -> None:
    if workers <= 1 or len(jobs) <= 1:
        for item in jobs:
            on_done(prepare_clip(item, cfg, out))
        return
    ctx = multiprocessing.get_context("spawn")
    pending: set[Future[ClipOutcome]] = set()
    it = iter(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        for item in it:
            pending.add(pool.submit(prepare_clip, item, cfg, out))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
        for fut in pending:
            on_done(fut.result())


def _disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _report_md(s: PrepareSummary, shard: tuple[int, int]) -> str:
    lines = [
        f"# Preparation report (shard {shard[0]} of {shard[1]})",
        "",
        "| | |",
        "|---|---|",
        f"| clips | {s.clips_total} ({s.clips_resumed} finished by an earlier run) |",
        f"| kept | {s.clips_kept} |",
        f"| skipped (too few usable frames) | {s.clips_skipped} |",
        f"| errors (unreadable, no face) | {s.clips_error} |",
        f"| frames read / written / without a face | {s.frames_in} / {s.frames_out} / {s.frames_no_face} |",
        f"| time | {s.seconds:.1f} s ({s.frames_per_second:.1f} frames/s) |",
        f"| dataset size on disk | {s.bytes_on_disk / 2**20:.1f} MiB |",
        "",
        "Reasons clips were not kept:",
        "",
        *(f"- {k}: {v}" for k, v in sorted(s.reasons.items())),
    ]
    if s.errors:
        lines += ["", "Errors:", "", *(f"- {e}" for e in s.errors)]
    return "\n".join(lines) + "\n"


def merge_manifest(out: Path) -> list[dict[str, Any]]:
    """Rebuild ``manifest.jsonl`` (kept clips of every shard) from ``index/*.jsonl``."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted((out / "index").glob("*.jsonl")):
        for rec in read_jsonl(path):
            if rec.get("status") == "kept":
                records[rec["key"]] = rec
    kept = [records[k] for k in sorted(records)]
    atomic_write_text(out / "manifest.jsonl", jsonl_text(kept))
    return kept


def prepare_dataset(
    srcs: list[str | Path],
    out: str | Path,
    cfg: PrepareConfig | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> PrepareSummary:
    """Prepare every clip under ``srcs`` (folders ``identity/.../clip.mp4``, CSV manifests, or files) into ``out``.

    Resumable: clips finished by an earlier run (kept or skipped) are not redone. ``shard=(i, n)`` prepares only
    the clips whose key hashes to ``i`` modulo ``n``. Bad inputs are reported through ``log`` (one line each) and
    counted in the summary; they never stop the batch.
    """
    cfg = cfg or PrepareConfig()
    out = Path(out)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    i_shard, n_shard = shard
    if not (0 <= i_shard < n_shard):
        raise InputError(f"bad shard {i_shard}/{n_shard}: need 0 <= i < n")
    items = [it for it in find_sources(srcs) if it.shard(n_shard) == i_shard]
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / "dataset.json"
    upgraded_info: dict[str, Any] | None = None
    info = {"format": FORMAT, "version": FORMAT_VERSION, "size": cfg.size, "config": to_dict(cfg)}
    if info_path.is_file():
        old = json.loads(info_path.read_text())
        if old.get("format") != FORMAT or old.get("size") != cfg.size:
            raise InputError(f"{out} holds a dataset prepared with other settings (size {old.get('size')}); "
                             "use another --out")
        if old.get("version", 1) < FORMAT_VERSION:
            upgraded_info = {**old, "version": FORMAT_VERSION}
    else:
        atomic_write_text(info_path, json.dumps(info, indent=1))

    summary = PrepareSummary(clips_total=len(items))
    records: list[dict[str, Any]] = []
    todo: list[SourceItem] = []
    for item in items:
        rec = _previous(out, item)
        if rec is None:
            todo.append(item)
        else:
            summary.clips_resumed += 1
            records.append(rec)
    if info_path.is_file() and todo and records:
        before = json.loads(info_path.read_text()).get("config", {}).get("track_smoothing", 0.0)
        if float(before) != float(cfg.track_smoothing):
            log(f"{out}: its clips were tracked with track_smoothing={before} (0: the tracker's One-Euro filter, as "
                f"before 2026-11-29), the {len(todo)} new one(s) get {cfg.track_smoothing}; --set "
                f"track_smoothing={before} keeps them alike, or prepare into another --out")
    old_clips = [i for i, r in enumerate(records) if r.get("status") == "kept" and "audio" not in r]
    if old_clips:  # prepared before format 2: add the audio features (the frames and landmarks stay as they are)
        log(f"{out}: adding audio features to {len(old_clips)} clip(s) prepared before format version "
            f"{FORMAT_VERSION}")
        for i in tqdm(old_clips, desc="add audio", unit="clip", disable=not progress, dynamic_ncols=True):
            records[i] = add_audio(out, records[i])

    reasons: Counter[str] = Counter()
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc="prepare", unit="clip", disable=not progress, dynamic_ncols=True)

    def on_done(res: ClipOutcome) -> None:
        records.append(res.record)
        summary.frames_in += res.frames_in
        summary.frames_out += res.frames_out
        for msg in res.messages:
            log(msg)
            if res.status == "kept":
                summary.errors.append(msg)
        bar.update(1)
        elapsed = time.perf_counter() - t0
        bar.set_postfix(frames=summary.frames_out, fps=f"{summary.frames_in / max(elapsed, 1e-9):.0f}")

    try:
        _run_parallel(todo, cfg, out, cfg.workers, on_done)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t0

    for rec in records:
        status = rec.get("status")
        summary.frames_no_face += int(rec.get("frames_no_face", 0) or 0)
        if status == "kept":
            summary.clips_kept += 1
        elif status == "skipped":
            summary.clips_skipped += 1
            reasons[_reason_class(rec.get("reason", ""))] += 1
        else:
            summary.clips_error += 1
            reasons[_reason_class(rec.get("reason", ""))] += 1
            summary.errors.append(rec.get("reason", rec.get("key", "?")))
    summary.reasons = dict(reasons)
    tag = f"{i_shard:05d}-of-{n_shard:05d}"
    records.sort(key=lambda r: r["key"])
    atomic_write_text(out / "index" / f"shard-{tag}.jsonl", jsonl_text(records))
    merge_manifest(out)
    if upgraded_info is not None and n_shard == 1:  # every clip of the dataset now has its audio entry
        atomic_write_text(info_path, json.dumps(upgraded_info, indent=1))
    summary.bytes_on_disk = _disk_usage(out)
    report = {k: v for k, v in vars(summary).items()}
    report["frames_per_second"] = summary.frames_per_second
    atomic_write_text(out / f"report-{tag}.json", json.dumps(report, indent=1))
    atomic_write_text(out / f"report-{tag}.md", _report_md(summary, shard))
    return summary
