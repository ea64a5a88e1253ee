from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead.cli import build_parser, main
from talkinghead.config import PrepareConfig, load_config, parse_overrides
from talkinghead.errors import InputError
from talkinghead.io import probe_video, write_image


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "talkinghead", *args], capture_output=True, text=True, timeout=300)


def test_sketch_video_with_audio(astronaut_mp4: Path, tmp_path: Path) -> None:
    out = tmp_path / "sketch.mp4"
    r = run("sketch", str(astronaut_mp4), "--out", str(out), "--size", "128", "--no-progress")
    assert r.returncode == 0, r.stderr
    info = probe_video(out)
    assert info.n_frames == 40 and (info.width, info.height) == (384, 128) and info.has_audio


@pytest.mark.parametrize("content,words", [(b"", "empty"), (b"not a video at all" * 50, "not a readable video")])
def test_bad_video_one_line_exit_2(tmp_path: Path, content: bytes, words: str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    r = run("sketch", str(bad), "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_no_face_image_exit_2(tmp_path: Path, faceless_frames) -> None:
    img = write_image(tmp_path / "wall.png", faceless_frames[0])
    r = run("prepare", str(img), "--out", str(tmp_path / "ds"), "--no-progress")
    assert r.returncode == 2 and "no face" in r.stderr and "Traceback" not in r.stderr


def test_no_face_in_a_source_photo_says_how_large_a_face_must_be(tmp_path: Path, faceless_frames,
                                                                  astronaut_mp4: Path) -> None:
    img = write_image(tmp_path / "wall.png", faceless_frames[0])
    r = run("animate", "--source", str(img), "--driving", str(astronaut_mp4), "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no face found in" in r.stderr and "pixels wide or more" in r.stderr, r.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    r = run("--debug", "sketch", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o.mp4"))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_refuses_to_overwrite_input(astronaut_mp4: Path) -> None:
    assert main(["sketch", str(astronaut_mp4), "--out", str(astronaut_mp4)]) == 2


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["prepare", "x", "--out", "y", "--shard", "3/2"])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as e:  # a head-size limit below 1 would shrink every head
        main(["animate", "--source", "x.jpg", "--driving", "y.mp4", "--out", "z.mp4", "--max-zoom", "0.5"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-zoom" in err
    assert build_parser().parse_args(["live", "--source", "x.jpg", "--max-zoom", "0"]).max_zoom == 0  # no limit
    assert build_parser().parse_args(["live", "--source", "x.jpg", "--max-turn", "0"]).max_turn == 0
    assert build_parser().parse_args(["live", "--source", "x.jpg", "--max-shift", "0.8"]).max_shift == 0.8
    assert build_parser().parse_args(["animate", "--source", "x.jpg", "--driving", "y.mp4", "--out", "z.mp4"]
                                     ).max_turn == 1.5


def test_config_layers(tmp_path: Path) -> None:
    yml = tmp_path / "c.yaml"
    yml.write_text("size: 128\ntracker:\n  upsample: 1\n")
    cfg = load_config(PrepareConfig, yaml_file=yml, overrides=parse_overrides(["tracker.detect_every=5", "margin=2"]))
    assert cfg.size == 128 and cfg.tracker.upsample == 1 and cfg.tracker.detect_every == 5 and cfg.margin == 2.0
    with pytest.raises(InputError, match="unknown key"):
        load_config(PrepareConfig, overrides={"tracker.upsampel": 1})
    with pytest.raises(InputError, match="expects int"):
        load_config(PrepareConfig, overrides={"size": "big"})
    # YAML 1.1 reads on/off as booleans; string settings get them back as "on"/"off"
    from talkinghead.config import TrainConfig

    t = load_config(TrainConfig, overrides=parse_overrides(["compile=on", "amp=off"]))
    assert (t.compile, t.amp) == ("on", "off")
    r = run("prepare", str(tmp_path), "--out", str(tmp_path / "ds"), "--set", "sise=3")
    assert r.returncode == 2 and "unknown key(s) sise" in r.stderr


@pytest.mark.parametrize("out,extra,words", [("o.gif", [], "name it .mp4"), ("o.webm", [], "not a .webm file"),
                                             ("o.mp4", ["--size", "7"], "64 to 2048 pixels, got 7"),
                                             ("o.mp4", ["--paste-back", "--max-side", "10"], "at least 64 pixels")])
def test_animate_output_it_cannot_write_exit_2_before_work(astronaut_png: Path, astronaut_mp4: Path, tmp_path: Path,
                                                            out: str, extra: list[str], words: str) -> None:
    """An output named .gif used to receive an MP4 under that name, and --size 7 an 8x8 video."""
    r = run("animate", "--source", str(astronaut_png), "--driving", str(astronaut_mp4), "--out", str(tmp_path / out),
            "--no-progress", *extra)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())
