from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.io import VideoReader, VideoWriter, probe_video, read_image, read_video, write_image
from tests.conftest import write_frames, write_tone


def _moving(n: int = 12, h: int = 64, w: int = 96) -> list[np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    return [np.stack([(xx * 2 + i * 8) % 256, (yy * 3) % 256, np.full_like(xx, 128)], -1).astype(np.uint8) for i in range(n)]


def test_write_read_roundtrip_with_audio(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "tone.m4a", seconds=2.0)
    frames = _moving(25)
    out = write_frames(tmp_path / "v.mp4", frames, fps=25.0, audio=tone)
    back, info = read_video(out)
    assert len(back) == 25 and info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (96, 64)
    assert info.has_audio
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        # audio cut to the video's 1 s (AAC frames make it a little longer at most)
        assert float(a.duration * a.time_base) < 1.2
    err = np.abs(back[5].astype(int) - frames[5].astype(int)).mean()
    assert err < 6  # H.264 at crf 18 on a smooth pattern


@pytest.mark.parametrize(
    "name,codec,rate,fmt",
    [("a.mp3", "libmp3lame", 44100, "fltp"), ("a.opus", "libopus", 48000, "s16"), ("a.flac", "flac", 22050, "s16"),
     ("a.wav", "pcm_s16le", 16000, "s16")],
)
def test_sound_track_from_common_audio_files(tmp_path: Path, name: str, codec: str, rate: int, fmt: str) -> None:
    # an mp3's decoder counts time in 1/14112000 s; the writer once muxed its frames with that time base and failed
    src = write_tone(tmp_path / name, 1.0, rate=rate, freq=300.0, codec=codec, fmt=fmt)
    out = write_frames(tmp_path / "v.mp4", _moving(20), fps=25.0, audio=src)
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
    assert a.codec_context.name == "aac"
    assert 0.75 <= samples / a.rate <= 0.85  # cut to the video's 0.8 s


def test_writer_is_atomic_and_pads_odd_sizes(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, fps=10) as w:
            w.write(np.zeros((33, 47, 3), np.uint8))
            raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())
    write_frames(out, [np.zeros((33, 47, 3), np.uint8)] * 3, fps=10)
    assert probe_video(out).width == 48


@pytest.mark.parametrize(
    "ext,codec", [(".mov", "libx264"), (".mkv", "libx264"), (".avi", "mpeg4"), (".mpg", "mpeg2video"), (".webm", "libvpx")]
)
def test_reads_common_containers(tmp_path: Path, ext: str, codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg build")
    path = tmp_path / f"v{ext}"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for f in _moving(10):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with VideoReader(path) as r:
        frames = list(r)
    assert len(frames) == 10 and frames[0].shape == (64, 96, 3) and frames[0].dtype == np.uint8


def test_bad_videos_raise_input_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 20)
    good = write_frames(tmp_path / "good.mp4", _moving(20))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path, words in ((empty, "empty"), (text, "not a readable video"), (cut, "not a readable video"),
                        (tmp_path / "missing.mp4", "no such file")):
        with pytest.raises(InputError, match=words):
            list(VideoReader(path))


def test_images_any_mode(tmp_path: Path) -> None:
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200
    write_image(tmp_path / "a.png", rgb)
    assert (read_image(tmp_path / "a.png") == rgb).all()
    write_image(tmp_path / "a.webp", rgb)
    assert np.abs(read_image(tmp_path / "a.webp").astype(int) - rgb).max() < 12
    gray = np.full((20, 30), 77, np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (20, 30, 3) and (g == 77).all()
    deep = np.full((20, 30, 3), 65535, np.uint16)
    deep[..., 2] = 0  # BGR on disk: red channel 0
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    d = read_image(tmp_path / "d.png")
    assert d.dtype == np.uint8 and tuple(d[0, 0]) == (0, 255, 255)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent → background
    cv2.imwrite(str(tmp_path / "t.png"), rgba)
    assert (read_image(tmp_path / "t.png") == 255).all()


def test_exif_orientation(tmp_path: Path) -> None:
    from PIL import Image

    img = np.zeros((10, 20, 3), np.uint8)
    img[:, :10] = 255  # left half white
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    pil.save(tmp_path / "o.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "o.jpg")
    assert out.shape == (20, 10, 3)
    assert out[:10].mean() > 200 and out[10:].mean() < 50  # the white half is now on top


def test_bad_images(tmp_path: Path) -> None:
    (tmp_path / "e.jpg").write_bytes(b"")
    (tmp_path / "t.jpg").write_text("hello")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "e.jpg")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "t.jpg")


def test_atomic_outputs_get_the_usual_permissions(tmp_path: Path) -> None:
    import os

    from talkinghead.io import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
