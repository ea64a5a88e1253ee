from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from talkinghead.config import PrepareConfig
from talkinghead.data import PreparedDataset, find_sources, prepare_dataset
from talkinghead.data.examples import ASTRONAUT_FACE_CENTER, affine_motion, astronaut, warp_video
from talkinghead.io import write_image
from tests.conftest import write_frames


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, astronaut_mp4: Path, faceless_frames) -> Path:
    """A small raw corpus in VoxCeleb2 layout, with one bad input of each kind."""
    root = tmp_path_factory.mktemp("raw")
    (root / "astro" / "v1").mkdir(parents=True)
    (root / "astro" / "v1" / "00001.mp4").write_bytes(astronaut_mp4.read_bytes())
    frames, _ = warp_video(astronaut(), affine_motion(30, amplitude=0.5), ASTRONAUT_FACE_CENTER, 288)
    (root / "astro" / "v2").mkdir()
    write_frames(root / "astro" / "v2" / "00001.mp4", frames)
    bad = root / "bad" / "v"
    bad.mkdir(parents=True)
    (bad / "zero.mp4").write_bytes(b"")
    whole = astronaut_mp4.read_bytes()
    (bad / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (bad / "text.mp4").write_text("hello, I am not a video\n" * 10)
    write_frames(bad / "noface.mp4", faceless_frames)
    photos = root / "photoperson"
    photos.mkdir()
    write_image(photos / "a.jpg", astronaut())
    write_image(photos / "b.png", np.ascontiguousarray(astronaut()[:, ::-1]))
    write_image(photos / "noface.jpg", faceless_frames[0])
    return root


@pytest.fixture(scope="module")
def good(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the usable inputs: two astronaut clips and two photos of one person."""
    root = tmp_path_factory.mktemp("good")
    (root / "astro").symlink_to(corpus / "astro")
    (root / "photoperson").mkdir()
    for name in ("a.jpg", "b.png"):
        (root / "photoperson" / name).symlink_to(corpus / "photoperson" / name)
    return root


def test_find_sources_layout(corpus: Path) -> None:
    items = {it.key: it for it in find_sources([corpus])}
    assert items["astro/v1__00001"].identity == "astro"
    assert items["photoperson/photos"].kind == "photos" and len(items["photoperson/photos"].paths) == 3
    assert {k for k in items if k.startswith("bad/")} == {"bad/v__zero", "bad/v__truncated", "bad/v__text", "bad/v__noface"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "talkinghead", *args], capture_output=True, text=True, timeout=600)


def test_prepare_cli_end_to_end(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    r = run_cli("prepare", str(corpus), "--out", str(out), "--size", "128", "--workers", "2", "--no-progress",
                "--min-frames", "8")
    # bad inputs: one clear line each, the batch goes on, exit code 2
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    for name, words in (("zero.mp4", "empty"), ("truncated.mp4", "not a readable video"),
                        ("text.mp4", "not a readable video"), ("noface.mp4", "no face"), ("noface.jpg", "no face")):
        hits = [ln for ln in lines if name in ln]
        assert len(hits) == 1 and words in hits[0], (name, lines)
    assert "prepared 3 clip(s) of 7" in r.stdout

    ds = PreparedDataset(out)
    assert {c.key for c in ds.clips} == {"astro/v1__00001", "astro/v2__00001", "photoperson/photos"}
    clip = next(c for c in ds.clips if c.key == "astro/v1__00001")
    assert clip.n_frames == 40 and clip.record["fps"] == pytest.approx(25.0)
    frames, lmk = clip.read([0, 17, 39])
    assert frames.shape == (3, 128, 128, 3) and frames.dtype == np.uint8 and lmk.shape == (3, 68, 2)
    assert (lmk > 0).all() and (lmk < 128).all()
    arrays = clip.arrays()
    assert arrays["boxes"].shape == (40, 3) and len(set(map(tuple, arrays["boxes"]))) == 1  # one stable box
    photos = next(c for c in ds.clips if c.record["kind"] == "photos")
    assert photos.n_frames == 2 and photos.record["frames_no_face"] == 1
    report = json.loads((out / "report-00000-of-00001.json").read_text())
    assert report["clips_kept"] == 3 and report["clips_error"] == 4
    assert (out / "report-00000-of-00001.md").read_text().startswith("# Preparation report")

    # resume: nothing is redone, the same clips come out
    mtime = clip.path.stat().st_mtime_ns
    r2 = run_cli("prepare", str(corpus), "--out", str(out), "--size", "128", "--no-progress", "--min-frames", "8")
    assert "(7 from an earlier run)" in r2.stdout, r2.stdout
    assert clip.path.stat().st_mtime_ns == mtime
    assert len(PreparedDataset(out)) == 3


def test_too_few_frames_is_a_skip_not_an_error(good: Path, tmp_path: Path) -> None:
    s = prepare_dataset([good], tmp_path / "ds", PrepareConfig(size=64, min_frames=100, workers=1),
                        progress=False, log=lambda m: None)
    assert s.clips_kept == 1 and s.clips_skipped == 2 and not s.errors  # photo sets need only 2
    assert s.reasons == {"too few usable": 2}


def test_shards_split_the_corpus(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cfg = PrepareConfig(size=64, min_frames=8, workers=1, max_frames=10)
    a = prepare_dataset([good], out, cfg, shard=(0, 2), progress=False)
    b = prepare_dataset([good], out, cfg, shard=(1, 2), progress=False)
    assert a.clips_total + b.clips_total == 3 and a.clips_total >= 1 and b.clips_total >= 1
    ds = PreparedDataset(out)
    assert len(ds) == 3  # the manifest merges both shards
    assert all(c.n_frames <= 10 for c in ds.clips)


def test_csv_manifest_with_split(corpus: Path, tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,identity,split\n{corpus}/astro/v1/00001.mp4,astro,val\n")
    prepare_dataset([csv], tmp_path / "ds", PrepareConfig(size=64, min_frames=8, workers=1), progress=False)
    assert len(PreparedDataset(tmp_path / "ds", split="val")) == 1
    assert len(PreparedDataset(tmp_path / "ds", split="train")) == 0


def test_interrupted_clip_is_redone(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cfg = PrepareConfig(size=64, min_frames=8, workers=1)
    prepare_dataset([good], out, cfg, progress=False)
    victim = next((out / "clips" / "astro").glob("*.zip"))
    victim.write_bytes(victim.read_bytes()[:1000])  # a damaged file (e.g. a disk that filled up)
    s = prepare_dataset([good], out, cfg, progress=False)
    assert s.clips_resumed == 2 and s.clips_kept == 3
    assert zipfile.ZipFile(victim).testzip() is None


def test_other_settings_need_another_folder(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    prepare_dataset([good], out, PrepareConfig(size=64, workers=1, max_frames=4, min_frames=2), progress=False)
    r = run_cli("prepare", str(good), "--out", str(out), "--size", "128", "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "other settings" in r.stderr


def test_prepared_tracks_follow_the_motion_without_the_causal_filters_lag(astronaut_mp4: Path, astronaut_frames,
                                                                         tmp_path: Path) -> None:
    """``prepare`` smooths a video's track centred on each frame (``track_smoothing``): its stored landmarks stay on
    a moving face, where the tracker's causal One-Euro filter (``track_smoothing=0``, as before) trailed it."""
    from talkinghead.data.examples import apply_affine
    from talkinghead.faces import detect_landmarks, to_frame_coords
    from talkinghead.faces.crop import CropBox

    truth = np.stack([apply_affine(detect_landmarks(astronaut()), m) for m in astronaut_frames[1]])
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,identity,split\n{astronaut_mp4},astro,train\n")

    def error(**cfg: float) -> float:
        out = tmp_path / f"ds{len(cfg)}"
        prepare_dataset([manifest], out, PrepareConfig(size=64, min_frames=8, workers=1, **cfg), progress=False)
        (clip,) = PreparedDataset(out).clips
        a = clip.arrays()
        box = CropBox(*(float(v) for v in a["boxes"][0]))
        assert len(a["frame_ids"]) == len(truth) and (a["boxes"] == a["boxes"][0]).all()  # one box per clip
        got = np.stack([to_frame_coords(p, box, 64) for p in a["landmarks"]])
        return float(np.linalg.norm(got - truth[a["frame_ids"]], axis=2).mean())

    centred, causal = error(), error(track_smoothing=0.0)
    assert centred < 1.0 < causal
    assert centred < 0.5 * causal


def test_adding_clips_with_other_track_smoothing_says_so(astronaut_mp4: Path, tmp_path: Path) -> None:
    frames, _ = warp_video(astronaut(), affine_motion(12, amplitude=0.3), ASTRONAUT_FACE_CENTER, 256)
    other = write_frames(tmp_path / "other.mp4", frames)
    first, both = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(f"path,identity,split\n{astronaut_mp4},astro,train\n")
    both.write_text(f"path,identity,split\n{astronaut_mp4},astro,train\n{other},other,train\n")
    out = tmp_path / "ds"
    lines: list[str] = []
    prepare_dataset([first], out, PrepareConfig(size=64, min_frames=8, workers=1, track_smoothing=0.0),
                    progress=False, log=lines.append)
    assert not lines
    prepare_dataset([both], out, PrepareConfig(size=64, min_frames=8, workers=1), progress=False, log=lines.append)
    assert len(lines) == 1 and "track_smoothing=0.0" in lines[0] and "1 new one(s) get 1.0" in lines[0]
    assert len(PreparedDataset(out).clips) == 2
