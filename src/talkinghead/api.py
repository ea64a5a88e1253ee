"""The Python API: what the CLI does, callable from code.

>>> from talkinghead import api
>>> summary = api.prepare(["videos/"], "dataset/", size=256, workers=2)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkinghead.config import PrepareConfig, TrainConfig, load_config
from talkinghead.data.prepare import PrepareSummary, prepare_dataset
from talkinghead.errors import InputError
from talkinghead.inference.sketch_video import SketchStats, write_sketch_video
from talkinghead.io.images import IMAGE_EXTENSIONS, read_image
from talkinghead.io.video import VideoReader

if TYPE_CHECKING:
    from talkinghead.inference.animate import AnimateResult
    from talkinghead.speech.drive import SpeakResult
    from talkinghead.training.metalearn import TrainResult


def prepare_config(config_file: str | Path | None = None, **overrides: Any) -> PrepareConfig:
    """Defaults, then a YAML file, then keyword overrides (``tracker={"upsample": 1}`` or ``size=128``)."""
    return load_config(PrepareConfig, yaml_file=config_file, overrides={k: v for k, v in overrides.items() if v is not None})


def prepare(
    srcs: list[str | Path],
    out: str | Path,
    config_file: str | Path | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    **overrides: Any,
) -> PrepareSummary:
    """Raw videos/photos → training dataset; see :func:`talkinghead.data.prepare_dataset`."""
    cfg = prepare_config(config_file, **overrides)
    return prepare_dataset(srcs, out, cfg, shard=shard, progress=progress)


def train_config(
    preset: str | None = "warp", config_file: str | Path | None = None, **overrides: Any
) -> TrainConfig:
    """A preset (tiny, small, paper), then a YAML file, then ``key=value`` overrides (dotted keys allowed)."""
    return load_config(TrainConfig, section="train", preset=preset, yaml_file=config_file,
                       overrides={k: v for k, v in overrides.items() if v is not None})


def train(
    data: str | Path,
    out: str | Path,
    preset: str | None = "warp",
    config_file: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Meta-learning on a prepared dataset; see :func:`talkinghead.training.metalearn.train`."""
    from talkinghead.training.metalearn import train as _train

    cfg = train_config(preset, config_file, **overrides)
    return _train(cfg, data, out, resume=resume, progress=progress)


def source_face_config(face_index: int = 0) -> Any:
    """How source photos are cropped for animation; ``face_index`` picks the face in a photo with several
    (0 = the largest). A negative index is bad input."""
    from talkinghead.config import PrepareConfig, TrackerConfig
    from talkinghead.inference.animate import CROP_SIZE

    if face_index < 0:
        raise InputError(f"--face-index must be 0 or more, got {face_index}")
    return PrepareConfig(size=CROP_SIZE, tracker=TrackerConfig(face_index=face_index))


def animate(
    source: list[str | Path],
    driving: str | Path,
    out: str | Path,
    model: str | Path | None = None,
    finetune_steps: int = 0,
    shots: int = 8,
    device: str = "auto",
    backend: str = "torch",
    face_index: int = 0,
    **options: Any,
) -> AnimateResult:
    """Photo(s) + driving video → talking-head video; ``options`` are :class:`AnimateOptions` fields."""
    from talkinghead.inference.animate import AnimateOptions, Animator

    check_output_path(out, [*source, driving], video=True)
    opts = AnimateOptions(**options)  # bad options fail before any compute
    anim = Animator(model, device=device, backend=backend, face=source_face_config(face_index))
    anim.set_source(list(source), shots=shots, finetune_steps=finetune_steps, progress=opts.progress)
    return anim.animate(driving, out, opts)


def finetune(
    source: list[str | Path],
    out: str | Path,
    model: str | Path | None = None,
    steps: int | None = None,
    shots: int = 8,
    device: str = "auto",
    progress: bool = True,
    face_index: int = 0,
) -> dict[str, Any]:
    """Fine-tune on photos (or a video) of one person and write a person file that ``animate`` accepts."""
    from talkinghead.inference.animate import Animator
    from talkinghead.inference.source import load_sources
    from talkinghead.models.bundle import save_bundle
    from talkinghead.training.finetune import default_steps

    check_output_path(out, list(source))
    anim = Animator(model, device=device, face=source_face_config(face_index))
    if anim.bundle.kind == "person":
        raise InputError("--model is already a fine-tuned person file; pass the meta-learned model")
    faces = load_sources(list(source), shots, anim.face)
    n = default_steps(len(faces), anim.bundle.config.arch) if steps is None else steps
    person = anim.finetune(faces, n, progress=progress)
    save_bundle(out, person)
    return {"steps": n, "sources": len(faces), "seconds": anim.finetune_seconds}


def speak(
    source: list[str | Path],
    out: str | Path,
    audio: str | Path | None = None,
    text: str | None = None,
    model: str | Path | None = None,
    speech_model: str | Path | None = None,
    finetune_steps: int = 0,
    shots: int = 8,
    language: str = "en",
    voice: str | None = None,
    words_per_minute: int = 160,
    fps: float = 25.0,
    max_seconds: float = 60.0,
    head_motion: float = 1.0,
    seed: int = 0,
    articulation: float = 1.0,
    lip_closures: bool = True,
    rest_mouth: bool = True,
    device: str = "auto",
    backend: str = "torch",
    face_index: int = 0,
    **options: Any,
) -> SpeakResult:
    """Photo(s) + speech (an audio file, or ``text`` spoken offline by eSpeak NG) → a talking video with that
    sound, lip-synced, with real head motion, blinks and glances; ``options`` are :class:`AnimateOptions` fields (the
    output is watermarked and signed as ``animate``'s). ``articulation``: scale of the jaw and lip motion (1 fits real
    speakers best: ``benchmarks/lipsync.py``); ``lip_closures``: for ``text``, close the lips on the spoken /p b m/
    (eSpeak NG says when), on top of the audio model's motion; ``rest_mouth``: a photo showing its mouth open (a
    smile with teeth) has it closed to rest first, so that the speech opens and closes it."""
    import tempfile

    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.speech.drive import SpeechDriver, load_speech
    from talkinghead.speech.drive import speak as _speak

    check_output_path(out, [*source, *([audio] if audio is not None else [])], video=True)
    opts = AnimateOptions(**options)
    with tempfile.TemporaryDirectory(prefix="talkinghead-speak-") as tmp:
        # the speech is checked (and synthesised) before any model is loaded: bad input fails fast
        speech = load_speech(audio, text, Path(tmp), language=language, voice=voice,
                             words_per_minute=words_per_minute, fps=fps, max_seconds=max_seconds)
        driver = SpeechDriver(speech_model, head_motion=head_motion, articulation=articulation, seed=seed,
                              lip_closures=lip_closures, rest_mouth=rest_mouth)
        anim = Animator(model, device=device, backend=backend, face=source_face_config(face_index))
        anim.set_source(list(source), shots=shots, finetune_steps=finetune_steps, progress=opts.progress)
        return _speak(anim, out, speech, driver, opts)


def sketch(
    src: str | Path, out: str | Path, config_file: str | Path | None = None, progress: bool = True, **overrides: Any
) -> SketchStats:
    """Write the landmark-sketch video of ``src`` (a video, or an image for a one-frame video) to ``out``."""
    cfg = prepare_config(config_file, **overrides)
    src = Path(src)
    if src.suffix.lower() in IMAGE_EXTENSIONS:
        return write_sketch_video([read_image(src)], out, fps=1.0, cfg=cfg, progress=progress)
    with VideoReader(src) as reader:
        return write_sketch_video(
            reader, out, fps=reader.info.fps, cfg=cfg, audio_from=src if reader.info.has_audio else None,
            progress=progress, total=reader.info.n_frames or None, name=str(src),
        )


def check_output_path(out: str | Path, inputs: list[str | Path] | tuple[()] = (), video: bool = False) -> Path:
    """Fail early (before any compute) when ``out`` cannot be written or would overwrite an input; with ``video``,
    also when its name promises a format other than the MP4 that is written."""
    out = Path(out)
    if video:
        from talkinghead.io.video import check_output_name

        check_output_name(out)
    resolved = out.resolve()
    for src in inputs:
        if Path(src).resolve() == resolved:
            raise InputError(f"refusing to overwrite the input {src} with the output")
    parent = resolved.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise InputError(f"cannot write {out}: {probe} is not a writable folder")
    if out.is_dir():
        raise InputError(f"cannot write {out}: it is a folder")
    return out
