"""Live animation: a camera (or a video paced like one) in, animated frames out, as fast as the machine allows.

:meth:`Animator.stream <talkinghead.inference.animate.Animator.stream>` returns a :class:`LiveStream`. A thread
takes frames from the source as they arrive and keeps only the newest in a one-frame slot; each time the
consumer asks for a frame, the newest one is tracked (the landmark predictor follows the face; the detector runs
only when tracking is lost), retargeted relative to the first frame with a face, generated and composed by the
same :class:`~talkinghead.inference.animate.FrameStep` that renders files. Frames that were replaced in the slot
before anyone took them are *dropped* (counted), never queued, so a slow consumer sees fresh frames rather than
a growing delay. Each output carries its latency from capture to output.

Memory stays flat: nothing grows with the session's length (latencies go into a fixed-size histogram).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from talkinghead.config import TrackerConfig
from talkinghead.errors import InputError
from talkinghead.faces.track import FaceTracker

if TYPE_CHECKING:
    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.provenance.marking import Marker

NO_FACE_NOTICE = "no face in view - holding the last pose"


def live_threads() -> int:
    """Give PyTorch one core less than the machine has (at least one): the camera, the tracker and the encoder
    need the other, and an oversubscribed OpenMP pool stalls (measured on 2 busy cores: 82 ms per 64² frame with
    one thread, 770 ms with two). NumPy's BLAS gets one thread (see :func:`single_threaded_blas`). Returns
    PyTorch's thread count."""
    import os

    import torch

    n = max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(n)
    single_threaded_blas()
    return n


_BLAS_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
                 "scipy_openblas_set_num_threads")


def single_threaded_blas() -> int:
    """Set every OpenBLAS loaded in this process (NumPy's, SciPy's, OpenCV's) to one thread; returns how many
    were set. Per frame the live path multiplies only small matrices (the thin-plate spline's 4096 x 78), too
    small to gain from a second thread, and OpenBLAS's idle worker thread spins between calls: in the browser
    benchmark it burned about 55 % of a core (``perf``: ``blas_thread_server``) that Chromium and the generator
    needed. Environment variables (OPENBLAS_NUM_THREADS) cannot do this once NumPy is loaded; this can."""
    import ctypes
    import os

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: leave BLAS as it is
        return 0
    libs = sorted({line.split(maxsplit=5)[5] for line in maps.splitlines()
                   if len(line.split(maxsplit=5)) == 6 and "openblas" in line.rsplit("/", 1)[-1].lower()})
    done = 0
    for path in libs:
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)  # the copy already loaded, never a new one
        except OSError:
            continue
        for name in _BLAS_SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                setter(1)
                done += 1
                break
    return done


def live_tracker(smoothing: float = 1.0, fps: float = 30.0, upsample: int = 0, face_index: int = 0,
                 name: str | None = None) -> FaceTracker:
    """A tracker for live use: the detector runs only when tracking is lost (a jump, or the face region stops
    looking like the last frame's), never on a schedule, so no frame pays for a routine detection.
    ``upsample``: the detector's pyramid upsampling (1 finds faces from ~40 px instead of ~80 px, at ~4x the cost
    of a detection; for small frames such as the web page's 320x240 webcam grabs). ``face_index`` and ``name``: which
    face to follow where several are seen (0 = the largest), and the stream's name for the note that says so."""
    return FaceTracker(TrackerConfig(detect_every=1 << 30, smoothing=smoothing, upsample=upsample, search_every=0,
                                     face_index=face_index), fps=fps, name=name, option="--driving-face-index")


class LatencyStats:
    """Latencies in a fixed histogram (0.5 ms bins up to 10 s): percentiles in bounded memory, for any duration."""

    BIN_S = 0.0005
    BINS = 20_000

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS + 1, np.int64)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.counts[min(self.BINS, max(0, int(seconds / self.BIN_S)))] += 1
        self.n += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (the upper edge of its bin); NaN before any sample."""
        if self.n == 0:
            return float("nan")
        rank = int(np.ceil(q / 100.0 * self.n))
        i = int(np.searchsorted(np.cumsum(self.counts), max(1, rank)))
        return self.max if i >= self.BINS else min((i + 1) * self.BIN_S, self.max)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")


@dataclass
class LiveFrame:
    """One animated frame."""

    image: np.ndarray
    """``(H, W, 3) uint8`` RGB, marked when the stream was given a marker."""
    index: int
    """Which source frame it was made from (0, 1, 2, ... in the order the source delivered them)."""
    captured: float
    """When that source frame was captured (:func:`time.perf_counter` seconds, or the clock the caller used)."""
    latency: float
    """Seconds from capture to this output."""
    face: bool
    """Whether a face was found in the source frame (False: the last pose is held)."""
    dropped: int
    """Source frames dropped so far (replaced by a newer one before they could be animated)."""


@dataclass
class LiveStats:
    frames: int
    """Frames animated."""
    received: int
    """Frames the source delivered."""
    dropped: int
    without_face: int
    seconds: float
    """From the first capture to the last output."""
    p50: float
    p95: float
    """Capture → output latency percentiles, in seconds."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        pct = 100.0 * self.dropped / self.received if self.received else 0.0
        lost = f", {self.without_face} without a face (pose held)" if self.without_face else ""
        return (f"{self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} fps, latency p50 "
                f"{self.p50 * 1000:.0f} ms / p95 {self.p95 * 1000:.0f} ms, {self.dropped} of {self.received} "
                f"source frames dropped ({pct:.1f} %){lost}")


class LiveRenderer:
    """One source frame → one animated frame, synchronously: track, retarget, generate, compose, mark."""

    def __init__(self, anim: Animator, options: AnimateOptions, *, fps: float = 30.0,
                 mark: Callable[[np.ndarray], np.ndarray] | None = None, tracker: FaceTracker | None = None) -> None:
        from talkinghead.inference.animate import FrameStep

        self.step = FrameStep(anim, options)
        self.tracker = tracker or live_tracker(options.smoothing, fps, face_index=options.driving_face_index,
                                               name="the driving stream")
        self.mark = mark
        self.timing = (0.0, 0.0, 0.0)
        """The last call's seconds spent tracking, generating + composing, and marking."""

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        """The output frame and whether a face was found in ``frame``."""
        t0 = time.perf_counter()
        lmk = self.tracker.update(frame).landmarks
        t1 = time.perf_counter()
        raw = self.tracker.raw_landmarks if lmk is not None else None  # blinks, undamped by the smoothing
        img = self.step.output([self.step.target(lmk, frame)], [frame], [self.step.parts(lmk, frame, raw)])[0]
        t2 = time.perf_counter()
        if self.mark is not None:
            img = self.mark(img)
        self.timing = (t1 - t0, t2 - t1, time.perf_counter() - t2)
        return img, lmk is not None

    @property
    def without_face(self) -> int:
        return self.step.lost


class LiveStream:
    """Iterator of :class:`LiveFrame`; see the module's description. Stats: :attr:`dropped`, :meth:`stats`."""

    def __init__(self, anim: Animator, frames: Iterable[np.ndarray | tuple[np.ndarray, float]],
                 options: AnimateOptions, *, fps: float = 30.0, mark: Callable[[np.ndarray], np.ndarray] | None = None,
                 tracker: FaceTracker | None = None) -> None:
        self.render = LiveRenderer(anim, options, fps=fps, mark=mark, tracker=tracker)
        self.latency = LatencyStats()
        self.received = 0
        self.dropped = 0
        self.frames = 0
        self._source = frames
        self._cond = threading.Condition()
        self._slot: tuple[int, np.ndarray, float] | None = None
        self._done = False
        self._stop = False
        self._error: BaseException | None = None
        self._first: float | None = None
        self._last_out: float | None = None
        self._thread = threading.Thread(target=self._produce, name="talkinghead-live-source", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._source:
                if isinstance(item, tuple):
                    frame, t = item
                else:
                    frame, t = item, time.perf_counter()
                with self._cond:
                    if self._stop:
                        break
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = (self.received, frame, t)
                    self.received += 1
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[LiveFrame]:
        return self

    def __next__(self) -> LiveFrame:
        with self._cond:
            while self._slot is None and not self._done and not self._stop:
                self._cond.wait(0.1)
            if self._slot is None or self._stop:
                if self._error is not None and not self._stop:
                    err, self._error = self._error, None
                    raise err
                raise StopIteration
            index, frame, captured = self._slot
            self._slot = None
        if self._first is None:
            self._first = captured
        img, face = self.render(frame)
        now = time.perf_counter()
        self._last_out = now
        latency = now - captured
        self.latency.add(latency)
        self.frames += 1
        return LiveFrame(img, index, captured, latency, face, self.dropped)

    def stats(self) -> LiveStats:
        seconds = (self._last_out - self._first) if self._first is not None and self._last_out is not None else 0.0
        return LiveStats(self.frames, self.received, self.dropped, self.render.without_face, seconds,
                         self.latency.percentile(50), self.latency.percentile(95))

    def close(self) -> None:
        """Stop taking frames from the source (the source thread ends at its next frame)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- sources -----------------------------------------------------------------------------------------------------
def paced(frames: Iterable[np.ndarray], fps: float, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Deliver ``frames`` at ``fps`` in real time, like a camera: frame i becomes available i/fps seconds after
    the first (late frames are delivered at once, without catching up by skipping)."""
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        wait = t0 + i / fps - time.perf_counter()
        if wait > 0:
            if stop is not None:
                if stop.wait(wait):
                    return
            else:
                time.sleep(wait)
        if stop is not None and stop.is_set():
            return
        yield frame


@dataclass
class Camera:
    """An opened OpenCV camera: iterate it for RGB frames."""

    index: int
    capture: cv2.VideoCapture
    fps: float
    first: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.first
        while True:
            ok, bgr = self.capture.read()
            if not ok or bgr is None:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()


def open_camera(index: int) -> Camera:
    """Open camera ``index`` (0 = the first) and read one frame; :class:`InputError` (exit 2) when it cannot."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # OpenCV's own warnings would add lines
    try:
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"cannot open camera {index}: no such camera, or it is in use or not permitted")
        ok, bgr = cap.read()
        if not ok or bgr is None:
            cap.release()
            raise InputError(f"camera {index} opened but gave no frame")
    finally:
        cv2.utils.logging.setLogLevel(level)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return Camera(index, cap, fps if 1.0 <= fps <= 240.0 else 30.0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


# -- outputs -----------------------------------------------------------------------------------------------------
def with_notice(image: np.ndarray, text: str = NO_FACE_NOTICE) -> np.ndarray:
    """A copy of ``image`` with a small notice along its bottom edge (for display, e.g. while no face is seen)."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.3, w / 700)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    pad = max(2, th // 3)
    y0 = h - th - base - 2 * pad
    out[y0:] = (out[y0:].astype(np.uint16) * 2 // 5).astype(np.uint8)
    cv2.putText(out, text, (max(pad, (w - tw) // 2), h - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out


class Recorder:
    """Writes a live session to an mp4 at the source's frame rate: source frame i is at time i/fps, and frames
    that were dropped repeat the output shown before them, so the video keeps real time. Marked and signed
    like every output (the marker's tags and finalize); written atomically on :meth:`close`."""

    def __init__(self, path: str | Path, fps: float, marker: Marker, crf: int = 20, preset: str = "veryfast") -> None:
        from talkinghead.io.video import VideoWriter

        self.path = Path(path)
        self.writer = VideoWriter(path, fps=fps, crf=crf, preset=preset, metadata=marker.tags,
                                  finalize=marker.finalize)
        self._next = 0
        self._last: np.ndarray | None = None

    def write(self, image: np.ndarray, index: int) -> None:
        """``image`` (already marked) made from source frame ``index``."""
        if index < self._next:
            return
        fill = self._last if self._last is not None else image
        while self._next < index:
            self.writer.write(fill)
            self._next += 1
        self.writer.write(image)
        self._next += 1
        self._last = image

    @property
    def frames(self) -> int:
        return self._next

    def close(self) -> Path:
        if self._next == 0:
            self.writer.abort()
            raise InputError("nothing was recorded (no frame was animated)")
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class Window:
    """A plain window showing frames (tkinter: OpenCV's wheels here are headless). Closing it, Esc or q stop."""

    def __init__(self, title: str = "talkinghead live") -> None:
        import os

        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise InputError("--show needs a display (DISPLAY is not set); record with --out instead")
        try:
            import tkinter as tk
        except ImportError:
            raise InputError("--show needs tkinter (e.g. apt install python3-tk); record with --out instead") from None
        try:
            self.root = tk.Tk()
        except tk.TclError as exc:
            raise InputError(f"--show cannot open a window: {exc}") from None
        self._tk = tk
        self.root.title(title)
        self.label = tk.Label(self.root)
        self.label.pack()
        self.closed = False
        self.root.protocol("WM_DELETE_WINDOW", self._close)
        self.root.bind("<Escape>", lambda _e: self._close())
        self.root.bind("q", lambda _e: self._close())
        self._photo = None

    def _close(self) -> None:
        self.closed = True

    def show(self, image: np.ndarray) -> bool:
        """Show ``image``; False once the window was closed."""
        if self.closed:
            return False
        h, w = image.shape[:2]
        ppm = b"P6 %d %d 255\n" % (w, h) + np.ascontiguousarray(image).tobytes()
        self._photo = self._tk.PhotoImage(data=ppm, format="PPM")
        self.label.configure(image=self._photo)
        self.root.update()
        return not self.closed

    def close(self) -> None:
        try:
            self.root.destroy()
        except self._tk.TclError:
            pass


@dataclass
class SessionResult:
    stats: LiveStats
    recording: Path | None
    recorded_frames: int
    interrupted: bool


def run_session(stream: LiveStream, recorder: Recorder | None = None, window: Window | None = None,
                seconds: float | None = None, on_frame: Callable[[LiveFrame], None] | None = None) -> SessionResult:
    """Consume a live stream until its source ends, ``seconds`` pass, the window closes or Ctrl-C; then stop the
    stream and finalise the recording (a Ctrl-C still leaves a complete, marked and signed file)."""
    interrupted = False
    t0 = time.perf_counter()
    try:
        try:
            for lf in stream:
                if recorder is not None:
                    recorder.write(lf.image, lf.index)
                if window is not None and not window.show(lf.image if lf.face else with_notice(lf.image)):
                    break
                if on_frame is not None:
                    on_frame(lf)
                if seconds is not None and time.perf_counter() - t0 >= seconds:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stream.close()
            if window is not None:
                window.close()
    except BaseException:
        if recorder is not None:
            recorder.abort()
        raise
    path = recorder.close() if recorder is not None else None
    return SessionResult(stream.stats(), path, recorder.frames if recorder is not None else 0, interrupted)


def write_y4m(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0) -> Path:
    """Write RGB frames (even sizes) as a YUV4MPEG2 (.y4m) file: the format Chromium plays as a fake camera
    (``--use-file-for-fake-video-capture``), for browser tests and benchmarks."""
    path = Path(path)
    with open(path, "wb") as f:
        header = False
        for frame in frames:
            h, w = frame.shape[:2]
            if not header:
                num, den = (int(round(fps * 1000)), 1000)
                f.write(f"YUV4MPEG2 W{w} H{h} F{num}:{den} Ip A1:1 C420jpeg\n".encode())
                header = True
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
