"""The animation pipeline: source photo(s) + driving motion → talking-head video.

Streaming: driving frames are decoded, tracked, generated in small batches and encoded as they come, so memory
does not grow with the driving video's length. Live (:meth:`Animator.stream`, :mod:`talkinghead.inference.live`)
runs the same per-frame step (:class:`FrameStep`) one frame at a time on the freshest camera frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from talkinghead.config import PrepareConfig, TrackerConfig
from talkinghead.errors import InputError, NoFaceError
from talkinghead.faces.crop import CropBox, crop_image, face_crop_box
from talkinghead.faces.landmarks import turned_face_hint
from talkinghead.faces.sketch import draw_sketch
from talkinghead.faces.smooth import smooth_stream
from talkinghead.faces.track import FaceTracker
from talkinghead.inference.backends import Backend, RenderLayers, embedder_inputs, make_backend, pick_device
from talkinghead.inference.blinks import BlinkFollower, close_lids
from talkinghead.inference.compose import (
    Paster,
    compose_layers,
    crop_mask,
    driver_view,
    face_mask,
    side_by_side,
    upscale,
)
from talkinghead.inference.gaze import GazeFollower, move_irises
from talkinghead.inference.mouth import DriverMouth, SourceMouth, insert_mouth
from talkinghead.inference.retarget import MAX_SHIFT, MAX_TURN, MAX_ZOOM, Retargeter, reference_index
from talkinghead.inference.source import SourceFace, load_sources
from talkinghead.io.images import write_image
from talkinghead.io.video import VideoReader, VideoWriter
from talkinghead.models.bundle import ModelBundle, load_model

if TYPE_CHECKING:
    from talkinghead.inference.live import LiveStream

CROP_SIZE = 256
"""Sources are cropped at this size (as the training data), then resized to the model's resolution."""


MIN_OUTPUT_SIZE, MAX_OUTPUT_SIZE = 64, 2048
"""The output face side's range, in pixels (smaller shows no usable face; larger is only more upscaling)."""
MAX_TRACK_SMOOTHING = 10.0
"""The widest centred smoothing of a driving video's landmarks, in frames (σ; 3 σ frames are read ahead)."""

FULL_RESOLUTION_FROM = 1.1
"""``full_resolution`` composes at the output's size where it is this many times the model's resolution or more."""

REFERENCES = ("auto", "first")
REFERENCE_SECONDS = 2.0
"""With ``reference="auto"``: how much of the driving video is tracked ahead to choose the reference frame."""
SETTLE_FRAMES = 15
"""A stream that cannot be read ahead (``live``): relative motion starts from its first frame with a face, and
once this many frames with a face have come, the one of them most like the source (:meth:`FrameStep.choose_reference`)
becomes the reference, once: a first frame in a blink or mid-word would otherwise stay the reference for the whole
session (the output would never blink, or keep its mouth shut)."""


@dataclass
class AnimateOptions:
    relative: bool = True
    """Landmark adaptation: transfer the driver's motion, keep the source's face shape (False: the driver's shape)."""
    reference: str = "auto"
    """Relative motion's reference (neutral) driving frame: "auto", the frame of the first ``REFERENCE_SECONDS``
    whose pose and expression are most like the source's (so a driver that starts mid-word or mid-grimace still
    opens and closes the photo's mouth as it does its own); "first", the first frame with a face (live, always)."""
    max_zoom: float = MAX_ZOOM
    """Relative motion: the head's change of size from the reference frame is limited to this factor either way (a
    driver leaning towards the camera otherwise swells the photo's face while its hair and shoulders stay; 0 = no
    limit). See :data:`~talkinghead.inference.retarget.MAX_ZOOM`."""
    max_shift: float = MAX_SHIFT
    """Relative motion: the face moves at most this many inter-ocular distances from where the photo has it, eased
    in past half of that (the warp holds the crop's border and the body stays; 0 = no limit). See
    :data:`~talkinghead.inference.retarget.MAX_SHIFT`."""
    max_turn: float = MAX_TURN
    """Relative motion: the face turns at most so far that either cheek looks this many times as wide as in the
    photo (a 2-D warp stretches what a turn would reveal; 0 = no limit). See
    :data:`~talkinghead.inference.retarget.MAX_TURN`."""
    paste_back: bool = False
    """Blend the generated face back into the full source photo."""
    max_side: int = 1920
    """With ``paste_back``: a photo whose longer side is larger is scaled down to it for the output (a 16-megapixel
    phone photo made 0.6 frames/s and a 4000² video); 0 keeps every photo's own size."""
    side_by_side: bool = False
    """Show the driving face to the left of the result."""
    output_size: int = 256
    """Side of the generated face in the output (the model's output is upscaled to it)."""
    full_resolution: bool = True
    """Where the output's face is larger than the model's (paste-back into a larger photo, a larger
    ``output_size``): compose it at that size from the photos' own pixels (the warp generator; see
    :func:`~talkinghead.inference.compose.compose_layers`) instead of upscaling the model's crop."""
    batch_size: int = 8
    frames_dir: str | Path | None = None
    """Also write every output frame as a PNG here."""
    watermark: bool = True
    """Mark every frame as synthetic (invisible watermark + container tags). See ``talkinghead verify``."""
    smoothing: float = 1.0
    """One-Euro smoothing of the driving landmarks (min cut-off, Hz; 0 = off): live driving, and a driving video
    file when ``track_smoothing`` is 0."""
    track_smoothing: float = 1.0
    """A driving video file: its landmarks smoothed by a Gaussian of this many frames (σ) centred on each frame,
    read ``ceil(3 σ)`` frames ahead (:func:`~talkinghead.faces.smooth.smooth_stream`), instead of the causal
    One-Euro filter, which trails the driver's mouth by a frame and damps it (the output's lips then lag the
    driving video's sound); 0 = the One-Euro filter (``smoothing``)."""
    crf: int = 18
    progress: bool = True
    credentials: bool = True
    """Sign a C2PA manifest (Content Credentials) into every output file, next to the watermark."""
    consent: bool = False
    """Record that the person's consent to the use of their likeness was declared (never implied)."""
    sign_cert: str | Path | None = None
    """Certificate chain (PEM) to sign with (default: TALKINGHEAD_SIGN_CERT, else a per-installation one)."""
    sign_key: str | Path | None = None
    """Its private key (PEM)."""
    model_file: str | Path | None = None
    """The model file, for its hash in the manifest (the weights' hash is recorded in any case)."""
    audio: str | Path | None = None
    """The output's sound track (any file with audio); by default the driving video's own sound, if any."""
    driver_mouth: bool = True
    """Where the target's mouth opens wider than the source photos', show the driving face's own mouth interior
    (teeth, the dark of the mouth) there, lit like the photo (:mod:`~talkinghead.inference.mouth`); a driving landmark
    track (no frames) leaves the mouth as the model renders it."""
    driver_gaze: bool = True
    """Slide the output's irises as the driving face's eyes look about (:mod:`~talkinghead.inference.gaze`: the 68
    landmarks carry the lids, not the gaze); a driving landmark track (no frames) moves them by its own gaze, if it
    has one (``speak``'s: the idle-motion bank's), and otherwise leaves the eyes as rendered."""

    full_blinks: bool = True
    """Close the output's eyes as far as the driving face closes its own (:mod:`~talkinghead.inference.blinks`):
    the landmarks leave closed eyes half open, so in the driver's blinks the output's upper lids are slid down over
    its eyes. The reading is the driver's landmarks' own, so a landmark track (``speak``'s) blinks fully too."""

    driving_face_index: int = 0
    """In a driving video with several faces, which one to follow: 0 = the largest (when the tracker first finds
    one, and again after losing it), 1 = the next, ..."""

    def __post_init__(self) -> None:
        if self.driving_face_index < 0:
            raise InputError(f"--driving-face-index must be 0 or more, got {self.driving_face_index}")
        if self.reference not in REFERENCES:
            raise InputError(f"the reference frame must be one of {', '.join(REFERENCES)}, got {self.reference!r}")
        if not (0.0 <= self.track_smoothing <= MAX_TRACK_SMOOTHING and 0.0 <= self.smoothing < float("inf")):
            raise InputError(f"landmark smoothing must be 0 or more (track smoothing at most {MAX_TRACK_SMOOTHING} "
                             f"frames), got {self.smoothing} Hz and {self.track_smoothing} frames")
        if self.max_zoom != 0 and not 1.0 <= self.max_zoom < float("inf"):
            raise InputError(f"--max-zoom must be 0 (no limit) or a factor of 1 or more, got {self.max_zoom}")
        if not 0.0 <= self.max_shift < float("inf"):
            raise InputError(f"--max-shift must be 0 (no limit) or more, got {self.max_shift}")
        if self.max_turn != 0 and not 1.0 <= self.max_turn < float("inf"):
            raise InputError(f"--max-turn must be 0 (no limit) or a factor of 1 or more, got {self.max_turn}")
        if not MIN_OUTPUT_SIZE <= self.output_size <= MAX_OUTPUT_SIZE:
            raise InputError(f"the output face size must be {MIN_OUTPUT_SIZE} to {MAX_OUTPUT_SIZE} pixels, "
                             f"got {self.output_size}")
        if self.max_side != 0 and self.max_side < MIN_OUTPUT_SIZE:
            raise InputError(f"the largest output side must be at least {MIN_OUTPUT_SIZE} pixels (or 0: the photo's "
                             f"own), got {self.max_side}")


@dataclass
class AnimateResult:
    path: Path
    frames: int
    frames_without_face: int
    """Driving frames whose face was lost (the last good landmarks were held)."""
    fps: float
    """Output video frame rate (the driving video's)."""
    seconds: float
    finetune_seconds: float = 0.0
    payload: str | None = None
    """The watermark payload written into every frame, if any."""

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip((images.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class _Driving:
    """A driving stream: per frame, the landmarks (or None) and the frame (or None for landmark tracks)."""

    items: Iterator[tuple[np.ndarray | None, np.ndarray | None]]
    fps: float
    total: int | None
    audio: Path | None = None
    closers: list = field(default_factory=list)
    shifts: np.ndarray | None = None
    """A landmark track's own gaze: per frame, how far the irises slide ``(du, dv)`` (eye widths)."""
    tracker: FaceTracker | None = None
    mouth: DriverMouth | None = None
    """A landmark track's mouth interior (a track has no frames to take the driver's from)."""


class Animator:
    """Animate a portrait with the motion of a driving video.

    >>> anim = Animator()                        # the shipped default model, on the GPU if there is one
    >>> anim.set_source(["portrait.jpg"])        # feed-forward; finetune_steps=N to fine-tune first
    >>> anim.animate("driving.mp4", "out.mp4")
    """

    def __init__(self, model: str | Path | ModelBundle | None = None, device: str = "auto", backend: str = "torch",
                 face: PrepareConfig | None = None) -> None:
        self.device = pick_device(device) if backend == "torch" else torch.device("cpu")
        self.bundle = model if isinstance(model, ModelBundle) else load_model(model)
        self.backend_name = backend
        self.backend: Backend = make_backend(self.bundle, backend, str(self.device))
        self.face = face or PrepareConfig(size=CROP_SIZE)
        self.sources: list[SourceFace] = []
        self.psi: np.ndarray | None = None
        self.finetune_seconds = 0.0

    @property
    def resolution(self) -> int:
        return self.bundle.config.resolution

    # -- sources --------------------------------------------------------------------------------------
    def set_source(self, sources: list[str | Path | np.ndarray], shots: int = 8, finetune_steps: int = 0,
                   progress: bool = True) -> list[SourceFace]:
        """Use these photos (or frames of a video) as the person to animate; ``finetune_steps`` > 0 fine-tunes."""
        faces = load_sources(sources, shots, self.face)
        self.set_faces(faces, finetune_steps, progress)
        return faces

    def set_faces(self, faces: list[SourceFace], finetune_steps: int = 0, progress: bool = True) -> None:
        """Like :meth:`set_source`, for faces already cropped (e.g. a prepared dataset's crops)."""
        crops = np.stack([f.crop for f in faces])
        landmarks = np.stack([f.landmarks for f in faces]).astype(np.float32)
        if self.bundle.kind == "person":
            psi = self.bundle.psi.cpu().numpy()  # type: ignore[union-attr]
        elif finetune_steps > 0:
            person = self.finetune(faces, finetune_steps, progress=progress)
            self.bundle = person
            self.backend = make_backend(person, self.backend_name, str(self.device))
            psi = person.psi.cpu().numpy()  # type: ignore[union-attr]
        else:
            psi = self.backend.project(self.backend.embed(*embedder_inputs(self.bundle, crops, landmarks)))
        self.sources, self.psi = faces, psi.astype(np.float32)
        self.backend.set_sources(crops, landmarks, self.psi)

    def finetune(self, faces: list[SourceFace], steps: int, progress: bool = True) -> ModelBundle:
        """Fine-tune the loaded meta-learned model on these source faces; returns the person model."""
        from talkinghead.training.finetune import finetune

        res = finetune(self.bundle, np.stack([f.crop for f in faces]), np.stack([f.landmarks for f in faces]), steps,
                       self.device, progress=progress)
        self.finetune_seconds = res.seconds
        res.bundle.meta["sources"] = [f.origin for f in faces]
        return res.bundle

    def render(self, targets: np.ndarray) -> np.ndarray:
        """Target landmarks ``(N, 68, 2)`` in 256² crop pixels → generated faces ``(N, S, S, 3) uint8``."""
        return _to_uint8(self.backend.render(self._model_targets(targets)))

    def render_layers(self, targets: np.ndarray) -> RenderLayers:
        """Like :meth:`render`, with what the warp generator's faces are made of (:class:`RenderLayers`)."""
        return self.backend.render_layers(self._model_targets(targets))

    def _model_targets(self, targets: np.ndarray) -> np.ndarray:
        """Target landmarks in 256² crop pixels → in the model's pixels (a source must be set)."""
        if self.psi is None:
            raise InputError("set a source first (Animator.set_source)")
        res = self.resolution
        targets = np.asarray(targets, np.float32)
        return targets if res == CROP_SIZE else (targets + 0.5) * (res / CROP_SIZE) - 0.5

    @property
    def fixed_paste_mask(self) -> bool:
        """Whether :meth:`_paste_mask` is the same for every frame (it does not depend on the target)."""
        return self.bundle.config.arch == "warp"

    def _paste_mask(self, target: np.ndarray | None, source: np.ndarray) -> np.ndarray:
        """Where the generated crop replaces the photo: the whole crop for the warp generator (it moves the hair,
        neck and shoulders too, and keeps the crop's border in place), the face for the paper's generator."""
        if self.fixed_paste_mask:
            return crop_mask(CROP_SIZE)
        if target is None:
            raise ValueError("the paper's generator pastes by the target's face: pass its landmarks")
        return face_mask(np.stack([target, source]), CROP_SIZE)

    # -- driving ----------------------------------------------------------------------------------------
    @staticmethod
    def _drive_video(path: Path, smoothing: float, face_index: int = 0, centred: float = 0.0) -> _Driving:
        """A driving video file's stream: tracked, then smoothed (``centred`` > 0: :func:`smooth_stream`, the
        tracker's One-Euro filter off; else the One-Euro filter at ``smoothing`` Hz)."""
        reader = VideoReader(path)
        tracker = FaceTracker(TrackerConfig(smoothing=0.0 if centred > 0 else smoothing, face_index=face_index),
                              fps=reader.info.fps, name=str(path), option="--driving-face-index")

        def items() -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
            for frame in reader:
                yield tracker.update(frame).landmarks, frame

        audio = path if reader.info.has_audio else None
        return _Driving(smooth_stream(items(), centred), reader.info.fps, reader.info.n_frames or None, audio,
                        [reader.close], tracker=tracker)

    def _drive_track(self, landmarks: np.ndarray, fps: float, gaze: np.ndarray | None = None,
                     mouth: DriverMouth | None = None) -> _Driving:
        def items() -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
            for lmk in landmarks:
                yield (lmk if np.isfinite(lmk).all() else None), None

        if gaze is not None and np.shape(gaze) != (len(landmarks), 2):
            raise ValueError(f"a track's gaze must be ({len(landmarks)}, 2), not {np.shape(gaze)}")
        return _Driving(items(), fps, len(landmarks), shifts=None if gaze is None else np.asarray(gaze, np.float64),
                        mouth=mouth)

    # -- rendering --------------------------------------------------------------------------------------
    def animate(self, driving: str | Path | tuple[np.ndarray, float] | tuple[np.ndarray, float, np.ndarray | None],
                out: str | Path, options: AnimateOptions | None = None,
                track_mouth: DriverMouth | None = None) -> AnimateResult:
        """Render ``out`` (.mp4) driven by a video file or a landmark track ``(landmarks (T, 68, 2), fps)``, or
        ``(landmarks, fps, gaze)`` with the track's gaze: per frame, how far to slide the irises ``(T, 2)`` (eye
        widths along and across the eyes, as :func:`~talkinghead.inference.gaze.iris_shift` gives; used unless
        ``driver_gaze`` is off). ``track_mouth``: for a track, the mouth interior shown where the target's mouth
        opens wider than the photos' (as a driving video's own is; unless ``driver_mouth`` is off)."""
        if self.psi is None or not self.sources:
            raise InputError("set a source first (Animator.set_source)")
        opt = options or AnimateOptions()
        if isinstance(driving, tuple):
            drv = self._drive_track(*driving, mouth=track_mouth)
        else:
            drv = self._drive_video(Path(driving), opt.smoothing, opt.driving_face_index, opt.track_smoothing)
        if opt.audio is not None:
            drv.audio = Path(opt.audio)
        try:
            return self._render(drv, Path(out), opt)
        finally:
            for close in drv.closers:
                close()

    def stream(self, frames: Iterable[np.ndarray | tuple[np.ndarray, float]], options: AnimateOptions | None = None,
               *, fps: float = 30.0, mark: Callable[[np.ndarray], np.ndarray] | None = None,
               tracker: FaceTracker | None = None) -> LiveStream:
        """Animate live: an iterator of driving frames in, an iterator of :class:`~talkinghead.inference.live.LiveFrame`
        out (the freshest frame each time one is asked for; stale ones are dropped and counted).

        ``frames``: RGB frames (or ``(frame, capture time)`` pairs, :func:`time.perf_counter` seconds) as a camera
        delivers them (see :func:`~talkinghead.inference.live.paced` for a video file). ``fps``: the source's
        nominal rate (landmark smoothing). ``mark``: e.g. a :func:`~talkinghead.provenance.marking.marking`
        marker, applied to every output frame. Use it as a context manager, or call ``close()``.
        """
        from talkinghead.inference.live import LiveStream

        if self.psi is None or not self.sources:
            raise InputError("set a source first (Animator.set_source)")
        return LiveStream(self, frames, options or AnimateOptions(progress=False), fps=fps, mark=mark,
                          tracker=tracker)

    def _render(self, drv: _Driving, out: Path, opt: AnimateOptions) -> AnimateResult:
        from talkinghead.provenance.marking import marking

        step = FrameStep(self, opt)
        mark = marking(opt.watermark, opt.credentials, model=self.bundle, model_file=opt.model_file,
                       consent=opt.consent, sign_cert=opt.sign_cert, sign_key=opt.sign_key,
                       frames_dir=opt.frames_dir)
        frames_dir = Path(opt.frames_dir) if opt.frames_dir else None
        if frames_dir is not None:
            frames_dir.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(out, fps=drv.fps, crf=opt.crf, audio_from=drv.audio, metadata=mark.tags,
                             finalize=mark.finalize)
        t0 = time.perf_counter()
        n = 0
        pending: list[tuple[np.ndarray, np.ndarray | None, DriverParts | None]] = []  # (target, frame, parts)
        bar = tqdm(total=drv.total, desc="animate", unit="frame", disable=not opt.progress)

        def flush() -> None:
            nonlocal n
            if not pending:
                return
            for img in step.output([p[0] for p in pending], [p[1] for p in pending], [p[2] for p in pending]):
                img = mark(img)
                writer.write(img)
                if frames_dir is not None:
                    write_image(frames_dir / f"{n:06d}.png", img)
                n += 1
            bar.update(len(pending))
            pending.clear()

        try:
            shifts = iter(drv.shifts) if drv.shifts is not None and opt.driver_gaze else None
            mouth = drv.mouth if opt.driver_mouth else None
            for lmk, frame, parts in step.look_ahead(drv.items, drv.fps):
                if shifts is not None or mouth is not None:  # a landmark track's own (it has no frames to read)
                    parts = DriverParts(mouth, None, next(shifts) if shifts is not None else None,
                                        parts.lids if parts is not None else None)
                pending.append((step.target(lmk, frame), frame, parts))
                if len(pending) >= opt.batch_size:
                    flush()
            flush()
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        if n == 0:
            writer.abort()
            raise InputError("the driving input has no frame")
        if step.last is None:
            writer.abort()
            seen = drv.tracker.most_faces if drv.tracker is not None else 0
            if seen:  # faces were found, but never the one asked for
                raise InputError(f"the driving video shows at most {seen} face(s) at once; --driving-face-index "
                                 f"{opt.driving_face_index} is out of range")
            hint = turned_face_hint(step.first_frame, what="video") if step.first_frame is not None else ""
            raise NoFaceError(f"no face found in any of the {n} driving frames{hint}")
        writer.close()
        seconds = time.perf_counter() - t0
        return AnimateResult(out, n, step.lost, drv.fps, seconds, self.finetune_seconds, mark.payload_text)


def _canvas(image: np.ndarray, box: CropBox, max_side: int) -> tuple[np.ndarray, CropBox]:
    """``image`` scaled down (area-averaged) so its longer side is at most ``max_side`` (0: as it is), and ``box``
    on the scaled image."""
    import cv2

    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image, box
    k = max_side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return small, CropBox(box.x0 * k, box.y0 * k, box.side * k)


@dataclass(frozen=True)
class DriverParts:
    """What one driving frame gives the output besides its landmarks (:meth:`FrameStep.parts`)."""

    mouth: DriverMouth | None
    """Its mouth interior (None: not used)."""
    gaze: np.ndarray | None
    """Its gaze ``(u, v)`` (:meth:`~talkinghead.inference.gaze.GazeFollower.observe`; None: not read, NaN: eyes
    closed)."""
    shift: np.ndarray | None = None
    """How far to slide the output's irises ``(du, dv)``, given (a landmark track's gaze) instead of read."""
    lids: float | None = None
    """How much of the output's eye opening its upper lids cover: the driver's blink
    (:meth:`~talkinghead.inference.blinks.BlinkFollower.observe`; None: not read)."""


class FrameStep:
    """The per-frame work every pipeline shares (files: :meth:`Animator.animate`; live: :meth:`Animator.stream`):
    driving landmarks → target landmarks (relative motion from a reference frame, :meth:`choose_reference`, else
    the first good frame; the last pose is held while no face is found) → generated faces → output frames
    (upscale, paste-back, side-by-side; not yet marked)."""

    def __init__(self, anim: Animator, opt: AnimateOptions) -> None:
        self.anim = anim
        self.opt = opt
        self.src = anim.sources[0]
        self.retarget = Retargeter(self.src.landmarks, relative=opt.relative, max_zoom=opt.max_zoom,
                                   max_turn=opt.max_turn, max_shift=opt.max_shift)
        self.last: np.ndarray | None = None
        """The last driving landmarks with a face (None until one was found)."""
        self.lost = 0
        """Driving frames without a face so far."""
        self.first_frame: np.ndarray | None = None
        """The first driving frame, kept only while no face has been found in any."""
        self.settle: list[np.ndarray] | None = [] if opt.relative and opt.reference == "auto" else None
        """Until the reference is chosen: the driving landmarks seen so far (:data:`SETTLE_FRAMES`)."""
        self.driver_box: CropBox | None = None
        self.paster: Paster | None = None
        """With ``paste_back``: pastes into the photo (scaled down to ``max_side``)."""
        canvas, box = _canvas(self.src.image, self.src.box, opt.max_side) if opt.paste_back else (None, None)
        if canvas is not None and box is not None:
            fixed = anim._paste_mask(None, self.src.landmarks) if anim.fixed_paste_mask else None
            self.paster = Paster(canvas, box, fixed)
        self.source_mouth = SourceMouth.of([f.crop for f in anim.sources], [f.landmarks for f in anim.sources]) \
            if opt.driver_mouth else None
        """What the sources' mouths show (None: the driver's mouth interior is not used)."""
        self.last_mouth: DriverMouth | None = None
        self.gaze = GazeFollower() if opt.driver_gaze else None
        """The driving face's gaze, relative to where it usually looks (None: the output's eyes are not moved)."""
        self.blinks = BlinkFollower() if opt.full_blinks else None
        """The driving face's blinks, read against its usual eye opening (None: blinks as the landmarks give them)."""
        self.last_lids: float | None = None
        self.full: list[np.ndarray] | None = None
        """With ``full_resolution``: the sources cut at the output face's size, where that is larger than the
        model's (the first from the paste-back canvas itself, pixel for pixel)."""
        side = int(round(box.side)) if box is not None else opt.output_size
        if opt.full_resolution and anim.bundle.config.arch == "warp" and side > FULL_RESOLUTION_FROM * anim.resolution:
            first = crop_image(canvas, box, side) if canvas is not None and box is not None else \
                crop_image(self.src.image, self.src.box, side)
            self.full = [first] + [crop_image(f.image, f.box, side) for f in anim.sources[1:]]

    def look_ahead(self, items: Iterator[tuple[np.ndarray | None, np.ndarray | None]], fps: float
                   ) -> Iterator[tuple[np.ndarray | None, np.ndarray | None, DriverParts | None]]:
        """A driving stream's ``(landmarks, frame)`` items with each one's :meth:`parts`, after choosing the
        reference among its first :data:`REFERENCE_SECONDS` (relative motion with ``reference="auto"``; otherwise
        nothing is read ahead)."""
        with_parts = ((lmk, frame, self.parts(lmk, frame)) for lmk, frame in items)
        if not (self.opt.relative and self.opt.reference == "auto"):
            return with_parts
        # only the side-by-side view needs the driving frames (a 4K clip's 2 s of frames are gigabytes)
        ahead = []
        face_seen = False
        for lmk, frame, mouth in islice(with_parts, max(1, round(REFERENCE_SECONDS * fps))):
            face_seen = face_seen or lmk is not None
            if not face_seen and self.first_frame is None and frame is not None:
                self.first_frame = frame  # for the error message, should no face ever be found
            ahead.append((lmk, frame if self.opt.side_by_side else None, mouth))
        self.choose_reference([lmk for lmk, _, _ in ahead])
        return chain(ahead, with_parts)

    def parts(self, lmk: np.ndarray | None, frame: np.ndarray | None,
              eyes: np.ndarray | None = None) -> DriverParts | None:
        """What the output takes from one driving frame besides its landmarks (None: nothing): how far its lids
        come down in a blink (read from its landmarks, so a track without frames gives it too; from ``eyes``
        where given: ``live`` passes the tracker's unfiltered landmarks, since its causal smoothing damps blinks),
        and from the frame itself its mouth (a frame without a face keeps the last lids and mouth, as its
        landmarks are) and its gaze."""
        if self.blinks is not None and lmk is not None:
            self.last_lids = self.blinks.observe(lmk if eyes is None else eyes)
        if frame is None or (self.source_mouth is None and self.gaze is None):
            return None if self.last_lids is None else DriverParts(None, None, lids=self.last_lids)
        if lmk is not None and self.source_mouth is not None:
            self.last_mouth = DriverMouth.of(frame, lmk)
        gaze = self.gaze.observe(frame, lmk) if self.gaze is not None and lmk is not None else None
        return DriverParts(self.last_mouth, gaze, lids=self.last_lids)

    def choose_reference(self, landmarks: list[np.ndarray | None]) -> None:
        """Take the driving frame (of these, None: no face) most like the source as relative motion's reference
        (by default the first frame with a face is)."""
        self.settle = None
        i = reference_index(landmarks, self.src.landmarks)
        if i is not None:
            self.retarget.set_reference(landmarks[i])  # type: ignore[arg-type]

    def target(self, lmk: np.ndarray | None, frame: np.ndarray | None) -> np.ndarray:
        """Target landmarks (source crop pixels) for one driving frame's landmarks (None: no face found)."""
        if lmk is None:
            self.lost += 1
            if self.last is None and self.first_frame is None and frame is not None:
                self.first_frame = frame  # kept while no face has been found: the error message looks at it
            lmk = self.last
        else:
            self.last = lmk
            self.first_frame = None
            if self.settle is not None:  # a stream not read ahead: choose the reference once enough has come
                self.settle.append(lmk)
                if len(self.settle) >= SETTLE_FRAMES:
                    self.choose_reference(self.settle)
            if self.driver_box is None and frame is not None:
                self.driver_box = face_crop_box(lmk, self.anim.face.margin, self.anim.face.shift_up)
        return self.retarget(lmk) if lmk is not None else self.src.landmarks

    def output(self, targets: list[np.ndarray], frames: list[np.ndarray | None],
               parts: list[DriverParts | None] | None = None) -> list[np.ndarray]:
        """Generate the faces for a batch of targets and compose the output frames (``parts``: each driving
        frame's :meth:`parts`, None: none)."""
        anim, opt, src = self.anim, self.opt, self.src
        res = anim.resolution
        if self.full is None:
            faces = list(anim.render(np.stack(targets)))
        else:
            faces = compose_layers(anim.render_layers(np.stack(targets)), self.full)
        out = []
        for face, target, frame, part in zip(faces, targets, frames, parts or [None] * len(targets), strict=True):
            if part is not None:
                at = (target + 0.5) * (face.shape[0] / CROP_SIZE) - 0.5  # the face's pixels
                if part.shift is not None:
                    face = move_irises(face, at, part.shift)
                elif self.gaze is not None:
                    face = move_irises(face, at, self.gaze.offset(part.gaze))
                if part.lids:  # after the irises: the lids come down over them
                    face = close_lids(face, at, part.lids)
                if part.mouth is not None and self.source_mouth is not None:
                    face = insert_mouth(face, at, part.mouth, self.source_mouth)
            img = upscale(face, opt.output_size)
            if self.paster is not None:  # the warp generator's mask is the paster's own
                img = self.paster(face, None if anim.fixed_paste_mask else anim._paste_mask(target, src.landmarks))
            if opt.side_by_side:
                left = driver_view(frame, self.driver_box, img.shape[0]) if frame is not None else \
                    upscale(draw_sketch(target * (res / CROP_SIZE), res), img.shape[0])
                img = side_by_side(left, img)
            out.append(img)
        return out
