"""Video and audio I/O with PyAV (FFmpeg): read any FFmpeg-readable file, write H.264 mp4 with audio.

Frames are ``(H, W, 3) uint8`` RGB arrays throughout the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np

from talkinghead.errors import InputError
from talkinghead.io.atomic import atomic_path

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mpg", ".mpeg", ".avi", ".webm", ".mkv", ".flv", ".wmv", ".ts"})
OUTPUT_EXTENSIONS = (".mp4", ".m4v", ".mov")
"""What :class:`VideoWriter` writes is an H.264 MP4: names that promise another format (.gif, .avi, .webm) are refused."""


def check_output_name(path: str | Path) -> None:
    """:class:`InputError` (exit 2) unless ``path`` names a file type that :class:`VideoWriter` writes."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_EXTENSIONS:
        got = f"{suffix} file" if suffix else "file without an extension"
        raise InputError(f"the output is an H.264 MP4 video: name it .mp4 (or {', '.join(OUTPUT_EXTENSIONS[1:])}), "
                         f"not a {got}: {path}")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    n_frames: int
    """Frame count from the container (an estimate when the container does not store it)."""
    duration_s: float
    has_audio: bool
    codec: str


def _fail(path: str | Path, exc: BaseException | str) -> InputError:
    reason = exc if isinstance(exc, str) else (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    return InputError(f"cannot read video {path}: {reason}")


def _open(path: str | Path) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise _fail(path, "no such file")
    if p.is_dir():
        raise _fail(path, "is a directory")
    if p.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not a readable video ({exc.__class__.__name__}: {getattr(exc, 'strerror', exc)})") from None
    if not container.streams.video:
        container.close()
        raise _fail(path, "no video stream")
    return container


def _info(path: str | Path, container: av.container.InputContainer) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 25.0
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 25.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    n = stream.frames or int(round(duration * fps))
    ctx = stream.codec_context
    return VideoInfo(
        path=str(path),
        width=int(ctx.width),
        height=int(ctx.height),
        fps=fps,
        n_frames=int(n),
        duration_s=duration,
        has_audio=bool(container.streams.audio),
        codec=ctx.name,
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Metadata of a video file; raises :class:`InputError` when it cannot be read."""
    container = _open(path)
    try:
        return _info(path, container)
    finally:
        container.close()


class VideoReader:
    """Iterate a video's frames as RGB uint8 arrays, decoding lazily (memory stays bounded).

    A stream that breaks off mid-way (a truncated download) ends iteration early and sets
    :attr:`truncated`; a file that yields no frame at all raises :class:`InputError`.
    """

    def __init__(self, path: str | Path, threads: bool = True) -> None:
        self.path = str(path)
        self._container = _open(path)
        self.info = _info(path, self._container)
        self._stream = self._container.streams.video[0]
        if threads:
            self._stream.thread_type = "AUTO"
        self.truncated = False
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for frame in self._container.decode(self._stream):
                img = frame.to_ndarray(format="rgb24")
                rot = getattr(frame, "rotation", 0) or 0
                if rot % 360:
                    img = np.ascontiguousarray(np.rot90(img, k=int(rot // 90) % 4))
                self.frames_read += 1
                yield img
        except (av.error.FFmpegError, OSError) as exc:
            if self.frames_read == 0:
                raise _fail(self.path, f"decoding failed ({exc.__class__.__name__})") from None
            self.truncated = True
        if self.frames_read == 0:
            raise _fail(self.path, "no decodable frame")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[list[np.ndarray], VideoInfo]:
    """Decode a whole (short) video into memory. Prefer :class:`VideoReader` for long ones."""
    with VideoReader(path) as reader:
        frames = []
        for img in reader:
            frames.append(img)
            if max_frames is not None and len(frames) >= max_frames:
                break
        return frames, reader.info


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


LARGE_FRAME = 1280 * 720
"""Frames above this many pixels are encoded with x264's ``veryfast`` preset instead of ``medium``: at 1920² on
2 cores 55 instead of 191 ms a frame (the encoder was most of a pasted-back photo's time), 0.5 dB lower (44.2
against 44.7 dB to the frames encoded) and a smaller file at the same CRF."""


def encoder_preset(width: int, height: int) -> str:
    """x264 preset for frames of this size (see :data:`LARGE_FRAME`)."""
    return "medium" if width * height <= LARGE_FRAME else "veryfast"


class VideoWriter:
    """Write RGB frames to an H.264 mp4 (yuv420p), optionally with the audio of another file.

    The file is written under a temporary name and renamed onto ``path`` only when :meth:`close` succeeds,
    so an interrupted run never leaves a half-written video under the final name. Audio is re-encoded to AAC
    and cut to the video's length. Odd frame sizes are padded by one pixel (yuv420p needs even sizes).

    ``finalize(tmp, path)``, if given, is called on the finished temporary file just before it is renamed onto
    ``path`` (e.g. to embed a signed manifest); if it raises, nothing is written under ``path``.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        crf: int = 18,
        audio_from: str | Path | None = None,
        preset: str | None = None,
        metadata: dict[str, str] | None = None,
        finalize: Callable[[Path, Path], None] | None = None,
    ) -> None:
        check_output_name(path)
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.metadata = metadata or {}
        self.finalize = finalize
        self._atomic = atomic_path(self.path, suffix=".mp4")
        self._tmp = self._atomic.__enter__()
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        for k, v in self.metadata.items():
            self._container.metadata[k] = v
        self._stream: av.video.stream.VideoStream | None = None
        self._audio_src: av.container.InputContainer | None = None
        self._audio_out: av.audio.stream.AudioStream | None = None
        self.frames_written = 0
        self._closed = False

    def _setup(self, h: int, w: int) -> None:
        stream = self._container.add_stream("libx264", rate=_fps_fraction(self.fps))
        stream.width = w + (w % 2)
        stream.height = h + (h % 2)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset or encoder_preset(w, h)}
        self._stream = stream
        self._audio_src, self._audio_out = self._open_audio()

    def _open_audio(self) -> tuple[av.container.InputContainer | None, av.audio.stream.AudioStream | None]:
        """Open the audio source and add the output AAC stream (must happen before the first packet is muxed)."""
        if self.audio_from is None:
            return None, None
        try:
            src = av.open(str(self.audio_from))
        except (av.error.FFmpegError, OSError):
            return None, None
        if not src.streams.audio:
            src.close()
            return None, None
        ctx = src.streams.audio[0].codec_context
        out = self._container.add_stream("aac", rate=ctx.sample_rate or 44100)
        out.layout = "mono" if ctx.channels == 1 else "stereo"
        return src, out

    def write(self, frame: np.ndarray) -> None:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self._stream is None:
            self._setup(*frame.shape[:2])
        assert self._stream is not None
        h, w = frame.shape[:2]
        if (h % 2) or (w % 2):
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def _mux_audio(self) -> None:
        """Re-encode the source's audio into the output, cut to the video's duration."""
        src, out_audio = self._audio_src, self._audio_out
        if src is None or out_audio is None:
            return
        rate = out_audio.codec_context.sample_rate
        layout = out_audio.layout.name
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        samples_left = int(round(self.frames_written / self.fps * rate))
        pts = 0
        try:
            for frame in src.decode(src.streams.audio[0]):
                if samples_left <= 0:
                    break
                frame.pts = None
                for rf in resampler.resample(frame):
                    if rf.samples > samples_left:
                        arr = np.ascontiguousarray(rf.to_ndarray()[:, :samples_left])
                        rf = av.AudioFrame.from_ndarray(arr, format="fltp", layout=layout)
                        rf.sample_rate = rate
                    rf.pts = pts
                    rf.time_base = Fraction(1, rate)  # the decoder's own may differ (mp3: 1/14112000)
                    pts += rf.samples
                    samples_left -= rf.samples
                    for packet in out_audio.encode(rf):
                        self._container.mux(packet)
                    if samples_left <= 0:
                        break
        except (av.error.FFmpegError, OSError):
            pass  # a broken audio track must not cost the user the video
        finally:
            src.close()
        for packet in out_audio.encode(None):
            self._container.mux(packet)

    def close(self) -> Path:
        """Finish the file and move it into place; returns the final path."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            if self._stream is None:
                raise ValueError("no frame was written")
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._mux_audio()
            self._container.close()
            if self.finalize is not None:
                self.finalize(self._tmp, self.path)
        except BaseException as exc:
            self._container.close()
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Discard the partial file."""
        if self._closed:
            return
        self._closed = True
        self._container.close()
        err = RuntimeError("aborted")
        self._atomic.__exit__(RuntimeError, err, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            try:
                self.abort()
            except RuntimeError:
                pass
