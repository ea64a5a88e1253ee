"""The web page's Live tab: the browser's webcam streams to the server, the animated portrait streams back.

Transport: Gradio's own streaming events (see the README's "Live" section for the measurements behind the
choice and the settings). Gradio's page grabs a JPEG from the webcam every ``STREAM_EVERY`` seconds and posts
every grab, whether or not an answer is pending; the server keeps only the newest grab that arrived while it was
busy (Gradio's stream event holds one input slot), so the generator runs back to back on fresh frames and stale
ones are dropped, never queued. Each returned frame is a base64 JPEG in the event stream. Everything runs over
the page's own HTTP connection: nothing but loopback, no TURN or STUN, no CDN.

What the browser path costs, by measurement (``benchmarks/live_latency.py --path browser``): per grab the page
draws the video to a canvas, encodes a JPEG, and Gradio's client posts it twice over (the value and the event
data) and updates its state; at 640x480 that made the page's work as costly as the generator's. Hence small
grabs (320x240: the detector upsamples, see ``CAMERA``). On the server, NumPy's BLAS is kept to one thread
(:func:`~talkinghead.inference.live.single_threaded_blas`): its idle second thread spun on the core Chromium needed.

Per visitor (Gradio session) the server keeps a :class:`~talkinghead.inference.live.LiveRenderer` (tracker,
relative motion, generator, watermark): the same per-frame step as ``talkinghead live`` and ``animate``. At most
``Limits.live_sessions`` visitors stream at a time; the next one gets a clear "busy" message. A session ends when
its tab closes (Gradio's unload event) or when no frame came for ``IDLE_S`` seconds.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from talkinghead.errors import InputError
from talkinghead.inference.live import NO_FACE_NOTICE, LatencyStats, LiveRenderer, live_threads, with_notice
from talkinghead.models.bundle import ModelBundle
from talkinghead.web import Limits

log = logging.getLogger("talkinghead.web")

STREAM_EVERY = 0.05
"""Seconds between webcam grabs in the browser (20/s, each one posted). Measured on this project's 2-core CPU
(``benchmarks/live_latency.py --path browser --stream-every S``, 30-s runs): 0.05 gave 16.0, 17.2 and 14.3
frames/s at p95 144, 142 and 175 ms; 0.04 gave 19.0, 15.9, 12.9, 13.5 and 14.1 frames/s at p95 116-175 ms
(more grabs to encode, post and parse, most of them replaced by a newer one)."""
IDLE_S = 5.0
"""A live session without a frame for this long is over (its slot goes to the next visitor)."""
MAX_SIDE = 320
"""Webcam frames are scaled down to this longer side before tracking (a browser may ignore ``CAMERA``)."""
CAMERA = {"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}}
"""What the page asks of the webcam: small grabs are cheaper to draw, encode, post, parse and decode, on both
sides. The generator only needs the driving face's landmarks. At 320x240 the detector (dlib HOG) needs one
pyramid upsampling (faces from ~40 px; without it none was found in the benchmark's clip, where the face is a
quarter of the frame's height), and it runs only when tracking is lost; the landmarks then stayed within 2 % of
the eyes' distance of those found at 640x480 (measured on that clip)."""
DETECT_UPSAMPLE = 1
"""The live tracker's detector upsampling for ``MAX_SIDE`` frames (see ``CAMERA``)."""
JPEG_QUALITY = 90
"""Quality of the frames sent back to the page (encoding one takes well under a millisecond: not worth less)."""
BUSY = ("Someone else is using the live mode right now (this server runs {n} live session(s) at a time). "
        "Please try again in a minute; the Animate tab works meanwhile.")


@dataclass
class _Session:
    portrait: str | None
    renderer: LiveRenderer
    payload: str | None
    latency: LatencyStats = field(default_factory=LatencyStats)
    started: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    frames: int = 0
    recent: list[float] = field(default_factory=list)
    """Output times of the last second (for the fps shown)."""
    timing: tuple[float, ...] = ()
    """The last frame's seconds spent tracking, generating + composing, marking and encoding."""


class LiveService:
    """Holds the live sessions; :meth:`frame` is the streaming event's handler."""

    def __init__(self, bundle: ModelBundle, limits: Limits, device: str,
                 load_source: Callable[[str | None], list[str | Path | np.ndarray]]) -> None:
        self.bundle = bundle
        self.limits = limits
        self.device = device
        self.load_source = load_source
        self.sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    # -- sessions ---------------------------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        for key in [k for k, s in self.sessions.items() if now - s.last_seen > IDLE_S]:
            log.info("live session %s ended (idle)", key[:8])
            del self.sessions[key]

    def end(self, key: str | None) -> None:
        """The visitor left (tab closed): free the slot now."""
        with self._lock:
            if key is not None and self.sessions.pop(key, None) is not None:
                log.info("live session %s ended (tab closed)", key[:8])

    def unload(self, request: gr.Request) -> None:
        """Gradio's unload event: the visitor's tab closed."""
        self.end(request.session_hash if request is not None else None)

    def _session(self, key: str, portrait: str | None) -> _Session:
        now = time.time()
        with self._lock:
            self._expire(now)
            s = self.sessions.get(key)
            if s is not None and s.portrait == portrait:
                s.last_seen = now
                return s
            if s is None and len(self.sessions) >= self.limits.live_sessions:
                raise gr.Error(BUSY.format(n=self.limits.live_sessions), title="Busy", print_exception=False)
            self.sessions[key] = s = self._start(portrait)  # holds the slot while the model loads
            return s

    def _start(self, portrait: str | None) -> _Session:
        from talkinghead.inference.animate import AnimateOptions, Animator
        from talkinghead.inference.live import live_tracker
        from talkinghead.provenance.marking import marking

        live_threads()
        anim = Animator(self.bundle, device=self.device)
        anim.set_source(self.load_source(portrait), progress=False)
        marker = marking(True, credentials=False, model=anim.bundle)  # frames shown are marked like files
        options = AnimateOptions(progress=False)
        tracker = live_tracker(options.smoothing, 1.0 / STREAM_EVERY, upsample=DETECT_UPSAMPLE)
        renderer = LiveRenderer(anim, options, fps=1.0 / STREAM_EVERY, mark=marker, tracker=tracker)
        return _Session(portrait, renderer, marker.payload_text)

    # -- the handler ------------------------------------------------------------------------------------------
    def frame(self, image: np.ndarray | None, portrait: str | None, client_ms: float | None,
              request: gr.Request) -> str:
        """One webcam frame → the animated portrait (an inline JPEG: no file is written, no second request) and
        a status line, as HTML. ``client_ms``: when the browser captured
        the frame (epoch milliseconds), if it says; else the server's receipt time counts as capture."""
        received = time.time()
        if image is None:
            return ""
        key = request.session_hash or "anonymous"
        try:
            s = self._session(key, portrait or None)
        except InputError as exc:
            from talkinghead.web.app import friendly_message

            with self._lock:
                self.sessions.pop(key, None)
            raise gr.Error(friendly_message(exc, {}), title="Cannot go live", print_exception=False) from None
        img, face = s.renderer(_shrink(image))
        if not face:
            img = with_notice(img, NO_FACE_NOTICE)
        encoding = time.perf_counter()
        jpeg = _data_url(img, JPEG_QUALITY)
        s.timing = (*s.renderer.timing, time.perf_counter() - encoding)
        sent = time.time()
        captured = client_ms / 1000.0 if client_ms and client_ms > 0 else received
        s.latency.add(sent - captured)
        s.frames += 1
        s.last_seen = sent
        s.recent = [t for t in s.recent if sent - t < 1.0] + [sent]
        return f'<img id="live-frame" alt="animated portrait" src="{jpeg}">' + self._status(s, face, captured,
                                                                                               received, sent)

    def _status(self, s: _Session, face: bool, captured: float, received: float, sent: float) -> str:
        fps = len(s.recent) / max(1e-3, min(1.0, sent - s.started))
        text = (f"Live: {fps:.0f} frames/s, latency {1000 * (sent - captured):.0f} ms "
                f"(p95 {1000 * s.latency.percentile(95):.0f} ms)"
                + ("" if face else " — no face in view, holding the last pose")
                + (f". Frames are watermarked (<code>{html.escape(s.payload)}</code>)." if s.payload else "."))
        stages = ",".join(f"{1000 * t:.1f}" for t in s.timing)
        return (f'<div class="live-meta" data-frame="{s.frames}" data-face="{int(face)}" '
                f'data-captured="{captured * 1000:.1f}" data-received="{received * 1000:.1f}" '
                f'data-sent="{sent * 1000:.1f}" data-stages="{stages}">{text}</div>')


def portrait_loader(limits: Limits) -> Callable[[str | None], list[str | Path | np.ndarray]]:
    """The Live tab's source: the example astronaut, or a photo uploaded through the page (checked like the
    Animate tab's: inside the upload folder, size and pixel caps, scaled down when large)."""

    def load(name: str | None) -> list[str | Path | np.ndarray]:
        from talkinghead.io.images import IMAGE_EXTENSIONS, read_image
        from talkinghead.web.app import accepted_upload, image_size, shrink

        if not name:
            from talkinghead.data.examples import astronaut

            return [astronaut()]
        path = accepted_upload(name, limits, "photo")
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise InputError(f"{path.name} is not a photo (accepted: {', '.join(sorted(IMAGE_EXTENSIONS))})")
        w, h = image_size(path)
        if w * h > limits.max_photo_pixels:
            raise InputError(f"{path.name} has {w}x{h} pixels; this server takes photos of up to "
                             f"{limits.max_photo_pixels / 1e6:g} megapixels")
        return [shrink(read_image(path), limits.max_photo_side)]

    return load


def _data_url(image: np.ndarray, quality: int = 90) -> str:
    import base64

    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _shrink(image: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return image
    k = MAX_SIDE / max(h, w)
    return cv2.resize(image, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)


LIVE_NOTE = """Move your face in front of the camera and the portrait follows. Press the camera's record button to
start, stop to end. Frames stream to this server only; they are not stored. {n} live session(s) at a time."""


def live_tab(service: LiveService) -> None:
    """The Live tab's components and events (call inside ``gr.Blocks``)."""
    gr.Markdown(LIVE_NOTE.format(n=service.limits.live_sessions), elem_id="live-note")
    with gr.Row(equal_height=False):
        with gr.Column():
            portrait = gr.Image(type="filepath", sources=["upload"], label="Portrait (empty: the example astronaut)",
                                height=200, elem_id="live-portrait")
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Your camera",
                              webcam_options=gr.WebcamOptions(mirror=False, constraints=CAMERA), elem_id="live-camera")
            clock = gr.Number(value=0, visible=False, elem_id="live-clock")
        with gr.Column():
            gr.Markdown("**Animated portrait**")
            out = gr.HTML(elem_id="live-output", min_height=280)
    camera.stream(service.frame, [camera, portrait, clock], [out], stream_every=STREAM_EVERY,
                  concurrency_limit=None, concurrency_id="live", show_progress="hidden", api_visibility="private")
