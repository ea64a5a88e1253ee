"""The web page: upload a portrait and a driving video, get the animated video back (Gradio, fully offline).

Safety rules the code below keeps:

- Only files that Gradio received through this page are read: every path is resolved and must lie in Gradio's
  upload folder (which the app places under its own temporary folder), be a regular file and be within the size
  cap. Nothing a visitor types is ever used as a path.
- The driving video's duration is read (container metadata, or by counting packets) before any work starts.
- Each request works in its own folder under ``<temp root>/jobs``; a janitor thread deletes job folders, and
  Gradio deletes its cached uploads and results, ``Limits.keep_minutes`` after they were written.
- The queue animates ``Limits.concurrency`` requests at a time (1 by default) and holds at most
  ``Limits.queue_size`` waiting ones.
- Errors reach the page as one friendly line (:class:`gradio.Error`); tracebacks stay in the server log.
- No analytics, no share links, no server-side rendering, no fonts or scripts from other hosts.
"""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TEMP_ROOT = Path(tempfile.gettempdir()) / "talkinghead-web"
"""The app's temporary folder unless ``temp_dir`` names another."""

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read by Gradio when it is imported and when Blocks are built
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
_owned_upload_dir: str | None = None
"""The GRADIO_TEMP_DIR this module set (it may replace its own setting, never one the user made)."""
if "GRADIO_TEMP_DIR" not in os.environ:  # before the import: Gradio makes some folders from it at import time
    os.environ["GRADIO_TEMP_DIR"] = _owned_upload_dir = str(DEFAULT_TEMP_ROOT / "uploads")

import av  # noqa: E402
import av.error  # noqa: E402
import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

from talkinghead.errors import InputError, NoFaceError  # noqa: E402
from talkinghead.inference.animate import AnimateOptions, AnimateResult, Animator  # noqa: E402
from talkinghead.io.images import IMAGE_EXTENSIONS, read_image, write_image  # noqa: E402
from talkinghead.io.video import VIDEO_EXTENSIONS, probe_video  # noqa: E402
from talkinghead.models.bundle import ModelBundle, load_model  # noqa: E402
from talkinghead.web import Limits  # noqa: E402
from talkinghead.web.live import LiveService, live_tab, portrait_loader  # noqa: E402
from talkinghead.web.speak import speak_tab  # noqa: E402

log = logging.getLogger("talkinghead.web")

SOURCE_EXAMPLE = "Example photo (astronaut)"
SOURCE_UPLOAD = "My photo(s)"
DRIVING_EXAMPLE = "Example motion (6 s, landmarks only)"
DRIVING_UPLOAD = "My video"
OUTPUT_NAME = "talkinghead.mp4"
SERVER_ERROR = "Something went wrong on the server (the details are in its log). Please try again."



# -- workspace ---------------------------------------------------------------------------------------------------
def prepare_workspace(temp_dir: str | Path | None) -> Path:
    """Create ``<root>/jobs`` (private to this user) and point Gradio's upload folder at ``<root>/uploads``
    unless the user chose one with GRADIO_TEMP_DIR. Returns the jobs folder."""
    global _owned_upload_dir
    root = Path(temp_dir) if temp_dir is not None else DEFAULT_TEMP_ROOT
    jobs = root / "jobs"
    jobs.mkdir(parents=True, exist_ok=True, mode=0o700)
    current = os.environ.get("GRADIO_TEMP_DIR")
    if current is None or current == _owned_upload_dir:
        uploads = root / "uploads"
        uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["GRADIO_TEMP_DIR"] = _owned_upload_dir = str(uploads)
    return jobs


class Janitor:
    """Deletes the entries of a folder older than ``max_age_s`` (except those in use), every ``every_s`` seconds."""

    def __init__(self, root: Path, max_age_s: float, every_s: float) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.every_s = every_s
        self.in_use: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self, now: float | None = None) -> int:
        """Delete what is old now; returns how many entries went."""
        cutoff = (time.time() if now is None else now) - self.max_age_s
        removed = 0
        for entry in list(self.root.iterdir()):
            with self._lock:
                if entry in self.in_use:
                    continue
            try:
                if entry.lstat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def claim(self, path: Path) -> None:
        with self._lock:
            self.in_use.add(path)

    def release(self, path: Path) -> None:
        with self._lock:
            self.in_use.discard(path)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="talkinghead-janitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.sweep()
            except OSError:
                log.exception("cleaning %s failed", self.root)


# -- input checks ------------------------------------------------------------------------------------------------
def upload_roots() -> list[Path]:
    """Folders an input file may come from: Gradio's upload folder (where it stores what visitors send)."""
    return [Path(get_upload_folder()).resolve()]


def accepted_upload(name: object, limits: Limits, what: str, roots: Sequence[Path] | None = None) -> Path:
    """The real path of a file Gradio handed over, after checking it is one: inside an upload folder, a regular
    file (not a link), no larger than the cap. Raises :class:`InputError` otherwise."""
    if not isinstance(name, (str, Path)) or not str(name):
        raise InputError(f"no {what} was uploaded")
    path = Path(name)
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"the uploaded {what} is no longer on the server; please upload it again") from None
    if path.is_symlink() or not any(real.is_relative_to(r) for r in roots or upload_roots()):
        raise InputError(f"the {what} must be uploaded through this page")
    if not real.is_file():
        raise InputError(f"the uploaded {what} is not a file")
    size = real.stat().st_size
    if size > limits.max_upload_bytes:
        raise InputError(f"{real.name} is {size / 2**20:.1f} MB; this server accepts files up to "
                         f"{limits.max_upload_mb:g} MB")
    return real


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the image header (nothing is decoded)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        raise InputError(f"{path.name} is not a readable image") from None


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Scale ``image`` down so that its longer side is ``max_side`` (a no-op for smaller images)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _counted_seconds(path: Path, fps: float, stop_after: float) -> float:
    """Duration by counting video packets (for containers that do not store it), stopping past ``stop_after``."""
    try:
        with av.open(str(path)) as container:
            n = 0
            for packet in container.demux(container.streams.video[0]):
                n += packet.size > 0
                if n / fps > stop_after:
                    break
    except (av.error.FFmpegError, OSError, IndexError):
        raise InputError(f"{path.name} is not a readable video") from None
    return n / fps


def video_seconds(path: Path, stop_after: float) -> float:
    """A video's duration in seconds, from its metadata when it has some; raises :class:`InputError` if unreadable."""
    info = probe_video(path)
    if info.duration_s > 0:
        return info.duration_s
    if info.n_frames > 0:
        return info.n_frames / info.fps
    return _counted_seconds(path, info.fps, stop_after)


def friendly_message(exc: InputError, names: dict[str, str]) -> str:
    """One line for the page: server paths replaced by the visitor's file names, a hint for a missing face,
    HTML-escaped (Gradio renders error messages as HTML)."""
    text = friendly_text(str(exc), names)
    if isinstance(exc, NoFaceError):
        text += ". Please use a photo in which one face is clearly visible and looks towards the camera."
    return html.escape(text)


def friendly_text(text: str, names: dict[str, str]) -> str:
    """``text`` with server paths replaced by the visitor's file names and command-line hints such as
    "(--face-index 0-2 picks one, ...)" left out, capitalised (not escaped)."""
    text = re.sub(r"\s*\(--[a-z][a-z-]*\b[^)]*\)", "", text)
    for full, short in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(full, short)
    for root in (*upload_roots(), DEFAULT_TEMP_ROOT):
        text = re.sub(re.escape(str(root)) + r"/[^\s:,;]*", lambda m: Path(m.group()).name, text)
    return text[:1].upper() + text[1:]


@contextmanager
def notes_of_this_thread() -> Iterator[list[str]]:
    """Collects the notes (warnings of the ``talkinghead`` loggers) that this thread's work logs meanwhile, e.g.
    "photo.jpg has 2 faces; using the largest": the command line prints them, the page shows them."""
    notes: list[str] = []
    me = threading.get_ident()

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == me and record.levelno >= logging.WARNING:
                notes.append(record.getMessage())

    handler, logger = _Collect(), logging.getLogger("talkinghead")
    logger.addHandler(handler)
    try:
        yield notes
    finally:
        logger.removeHandler(handler)


# -- the request -------------------------------------------------------------------------------------------------
@dataclass
class Request:
    """What the page sends for one animation."""

    source_kind: str
    photos: list[str] | None
    driving_kind: str
    video: str | None
    finetune_steps: int
    relative: bool
    paste_back: bool
    side_by_side: bool


class Service:
    """Holds the loaded model and the workspace; :meth:`run` is the page's event handler."""

    def __init__(self, bundle: ModelBundle, limits: Limits, device: str, jobs: Path) -> None:
        self.bundle = bundle
        self.limits = limits
        self.device = device
        self.jobs = jobs
        self.janitor = Janitor(jobs, limits.keep_minutes * 60, every_s=min(60.0, limits.keep_minutes * 30))
        self._motion: tuple[np.ndarray, float] | None = None

    def run(self, source_kind: str, photos: list[str] | None, driving_kind: str, video: str | None,
            finetune_steps: float, relative: bool, paste_back: bool, side_by_side: bool,
            progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, str]:  # noqa: B008
        """Animate; returns the video's path and a one-paragraph summary (Markdown)."""
        req = Request(source_kind, photos, driving_kind, video, int(finetune_steps or 0), bool(relative),
                      bool(paste_back), bool(side_by_side))
        self.janitor.sweep()
        job = Path(tempfile.mkdtemp(prefix="job-", dir=self.jobs))
        self.janitor.claim(job)
        names: dict[str, str] = {}
        try:
            with notes_of_this_thread() as notes:
                result = self._animate(req, job, names, progress)
        except InputError as exc:
            shutil.rmtree(job, ignore_errors=True)
            raise gr.Error(friendly_message(exc, names), title="Cannot animate", print_exception=False) from None
        except gr.Error:
            shutil.rmtree(job, ignore_errors=True)
            raise
        except Exception:
            shutil.rmtree(job, ignore_errors=True)
            log.exception("animation failed")
            raise gr.Error(SERVER_ERROR, title="Cannot animate", print_exception=False) from None
        finally:
            self.janitor.release(job)
        return str(result.path), summary(result) + notes_markdown(notes, names)

    def _animate(self, req: Request, job: Path, names: dict[str, str], progress: gr.Progress) -> AnimateResult:
        sources = self._sources(req, job, names)
        driving = self._driving(req, names)
        steps = max(0, min(req.finetune_steps, self.limits.max_finetune_steps))
        progress(0.0, desc="Finding the face" + (f", then fine-tuning {steps} steps" if steps else ""))
        anim = Animator(self.bundle, device=self.device)
        anim.set_source(sources, finetune_steps=steps, progress=True)
        progress(0.0, desc="Animating")
        options = AnimateOptions(relative=req.relative, paste_back=req.paste_back, side_by_side=req.side_by_side,
                                 progress=True)
        return anim.animate(driving, job / OUTPUT_NAME, options)

    def _sources(self, req: Request, job: Path, names: dict[str, str]) -> list[str | Path | np.ndarray]:
        if req.source_kind == SOURCE_EXAMPLE:
            from talkinghead.data.examples import astronaut

            return [astronaut()]
        photos = [p for p in (req.photos or []) if p]
        if not photos:
            raise InputError("please upload a photo of the person to animate (or choose the example photo)")
        if len(photos) > self.limits.max_photos:
            raise InputError(f"{len(photos)} photos were uploaded; this server takes up to {self.limits.max_photos}")
        return [self._photo(p, job, i, names) for i, p in enumerate(photos)]

    def _photo(self, name: str, job: Path, index: int, names: dict[str, str]) -> Path:
        """An uploaded photo, checked; a scaled-down copy in the job folder when it is larger than needed."""
        path = accepted_upload(name, self.limits, "photo")
        names[str(path)] = path.name
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise InputError(f"{path.name} is not a photo (accepted: {', '.join(sorted(IMAGE_EXTENSIONS))})")
        w, h = image_size(path)
        if w * h > self.limits.max_photo_pixels:
            raise InputError(f"{path.name} has {w}x{h} pixels; this server takes photos of up to "
                             f"{self.limits.max_photo_pixels / 1e6:g} megapixels")
        if max(w, h) <= self.limits.max_photo_side:
            return path
        small = job / f"photo{index}-{path.stem}.png"
        write_image(small, shrink(read_image(path), self.limits.max_photo_side))
        names[str(small)] = path.name
        return small

    def _driving(self, req: Request, names: dict[str, str]) -> Path | tuple[np.ndarray, float]:
        if req.driving_kind == DRIVING_EXAMPLE:
            return self.example_motion()
        if not req.video:
            raise InputError("please upload a driving video (or choose the example motion)")
        path = accepted_upload(req.video, self.limits, "video")
        names[str(path)] = path.name
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise InputError(f"{path.name} is not a video (accepted: {', '.join(sorted(VIDEO_EXTENSIONS))})")
        cap = self.limits.max_driving_seconds
        seconds = video_seconds(path, stop_after=cap)
        if seconds > cap + 0.05:
            raise InputError(f"{path.name} is {seconds:.1f} s long; this server animates driving videos of up to "
                             f"{cap:g} s. Please trim it and upload it again")
        return path

    def example_motion(self) -> tuple[np.ndarray, float]:
        if self._motion is None:
            from talkinghead.assets import driving_motion

            self._motion = driving_motion()
        return self._motion


def summary(result: AnimateResult) -> str:
    """The line shown under the video."""
    parts = [f"**Done**: {result.frames} frames at {result.fps:.0f} fps, rendered in {result.seconds:.1f} s "
             f"({result.frames_per_second:.1f} frames/s)"]
    if result.finetune_seconds:
        parts.append(f"fine-tuning took {result.finetune_seconds:.1f} s")
    if result.frames_without_face:
        parts.append(f"{result.frames_without_face} driving frame(s) showed no face (the last pose was held)")
    text = "; ".join(parts) + "."
    if result.payload:
        text += (f" The video is marked as synthetic (watermark `{result.payload}`, and signed Content Credentials "
                 "that C2PA tools read).")
    return text


def notes_markdown(notes: Sequence[str], names: dict[str, str]) -> str:
    """A run's notes (:func:`notes_of_this_thread`) as paragraphs to follow its summary: each once, in order, with
    the visitor's file names (:func:`friendly_text`); empty without notes."""
    return "".join(f"\n\n**Note**: {html.escape(n)}" for n in dict.fromkeys(friendly_text(n, names) for n in notes))


# -- the page ----------------------------------------------------------------------------------------------------
INTRO = """# talkinghead
Animate a portrait with the face motion of a driving video. Everything runs on this server; nothing is sent
elsewhere. Results carry an invisible watermark and a signed C2PA manifest (Content Credentials) that mark them
as synthetic."""


def _source_inputs(limits: Limits) -> tuple[gr.Radio, gr.File, gr.Image]:
    gr.Markdown("### 1. Who is animated")
    kind = gr.Radio([SOURCE_EXAMPLE, SOURCE_UPLOAD], value=SOURCE_EXAMPLE, show_label=False, elem_id="source-kind")
    photos = gr.File(label=f"Photo(s) of one person (up to {limits.max_photos})", file_count="multiple",
                     file_types=["image"], type="filepath", visible=False, elem_id="source-files")
    from talkinghead.data.examples import astronaut

    preview = gr.Image(astronaut(), label="Example photo", interactive=False, height=220, elem_id="source-example",
                       buttons=[])
    kind.change(lambda k: (gr.File(visible=k == SOURCE_UPLOAD), gr.Image(visible=k == SOURCE_EXAMPLE)), kind,
                [photos, preview], queue=False, show_progress="hidden", api_visibility="private")
    return kind, photos, preview


def _driving_inputs(limits: Limits) -> tuple[gr.Radio, gr.Video]:
    gr.Markdown("### 2. How it moves")
    kind = gr.Radio([DRIVING_EXAMPLE, DRIVING_UPLOAD], value=DRIVING_EXAMPLE, show_label=False,
                    elem_id="driving-kind")
    video = gr.Video(label=f"Driving video (up to {limits.max_driving_seconds:g} s)", sources=["upload"],
                     include_audio=True, visible=False, height=240, elem_id="driving-video")
    kind.change(lambda k: gr.Video(visible=k == DRIVING_UPLOAD), kind, video, queue=False, show_progress="hidden",
                api_visibility="private")
    return kind, video


def _option_inputs(limits: Limits) -> list[gr.components.Component]:
    gr.Markdown("### 3. Options")
    steps = gr.Slider(0, limits.max_finetune_steps, value=0, step=10, label="Fine-tuning steps",
                      info="0 = feed-forward (fast). More steps fit this person better but take much longer.",
                      elem_id="finetune-steps")
    relative = gr.Checkbox(True, label="Relative motion",
                           info="Keep the photo's face shape and move it like the driver "
                                "(off: copy the driver's shape)")
    paste = gr.Checkbox(False, label="Paste back", info="Blend the animated face into the whole photo")
    side = gr.Checkbox(False, label="Side by side", info="Show the driving face to the left of the result")
    return [steps, relative, paste, side]


def _limits_note(limits: Limits) -> str:
    return (f"Files up to {limits.max_upload_mb:g} MB, driving videos up to {limits.max_driving_seconds:g} s. "
            f"Requests are animated {limits.concurrency} at a time; others wait in a queue. "
            f"Uploads and results are deleted after {limits.keep_minutes:g} minutes.")


def _layout(service: Service, live: LiveService | None = None) -> None:
    gr.Markdown(INTRO)
    with gr.Tab("Animate a video", elem_id="tab-animate"):
        _animate_tab(service)
    with gr.Tab("Speak", elem_id="tab-speak"):
        speak_tab(service)
    if live is not None:
        with gr.Tab("Live", elem_id="tab-live"):
            live_tab(live)


def _animate_tab(service: Service) -> None:
    limits = service.limits
    with gr.Row(equal_height=False):
        with gr.Column():
            source_kind, photos, _ = _source_inputs(limits)
            driving_kind, video = _driving_inputs(limits)
            options = _option_inputs(limits)
            run = gr.Button("Animate", variant="primary", elem_id="run")
            gr.Markdown(_limits_note(limits), elem_id="limits")
        with gr.Column():
            result = gr.Video(label="Result", interactive=False, buttons=["download"], elem_id="result")
            status = gr.Markdown(elem_id="status")
    run.click(service.run, [source_kind, photos, driving_kind, video, *options], [result, status],
              api_name="animate", concurrency_id="animate", show_progress="full")


def build_app(model: str | Path | ModelBundle | None = None, limits: Limits = Limits(), device: str = "auto",
              temp_dir: str | Path | None = None) -> gr.Blocks:
    """The Gradio page, queued (``limits.concurrency`` at a time) and ready to launch.

    ``model``: as for :class:`~talkinghead.inference.animate.Animator` (default: the shipped model), loaded once.
    ``temp_dir``: the app's temporary folder (default ``<system temp>/talkinghead-web``); unless GRADIO_TEMP_DIR
    is set, Gradio's uploads go there too.
    """
    jobs = prepare_workspace(temp_dir)
    bundle = model if isinstance(model, ModelBundle) else load_model(model)
    service = Service(bundle, limits, device, jobs)
    keep = int(limits.keep_minutes * 60)
    live = LiveService(bundle, limits, device, portrait_loader(limits))
    with gr.Blocks(title="talkinghead", analytics_enabled=False, delete_cache=(max(60, keep // 2), keep)) as demo:
        _layout(service, live)
        demo.unload(live.unload)  # the tab closed: its live session ends
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    service.janitor.sweep()
    service.janitor.start()
    return demo


def launch_options(host: str, port: int, limits: Limits) -> dict[str, Any]:
    """Arguments for :meth:`gradio.Blocks.launch` that keep the server local and offline."""
    return {"server_name": host, "server_port": port, "share": False, "inbrowser": False, "ssr_mode": False,
            "mcp_server": False, "pwa": False, "max_file_size": limits.max_upload_bytes, "show_error": False,
            "enable_monitoring": False, "run_history": False, "footer_links": ["gradio"]}


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def serve(host: str = "127.0.0.1", port: int = 7860, model: str | Path | ModelBundle | None = None,
          limits: Limits = Limits(), device: str = "auto", temp_dir: str | Path | None = None,
          block: bool = True) -> gr.Blocks:
    """Start the page on ``host:port`` (this machine only by default). With ``block`` (the default) it serves
    until interrupted; otherwise it returns the running app (stop it with ``.close()``)."""
    if not is_loopback(host):
        log.warning("serving on %s: the page has no login; anyone who can reach %s:%d can use it", host, host, port)
    demo = build_app(model, limits, device, temp_dir)
    demo.launch(prevent_thread_lock=not block, quiet=True, **launch_options(host, port, limits))
    return demo
