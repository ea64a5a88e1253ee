"""The per-frame fast paths give what the plain computations give: the thin-plate grid with its precomputed basis,
the generator's channels-last convolutions on the CPU, its pixel shuffle and one-source shortcut, and the backend's
kept source pick."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkinghead.api import train_config
from talkinghead.assets import driving_motion
from talkinghead.config import ModelConfig
from talkinghead.faces.warp import border_anchors, identity_grid, tps_eval, tps_fit, tps_grid
from talkinghead.inference.backends import TorchBackend
from talkinghead.models import warp_generator as wg
from talkinghead.models.bundle import ModelBundle
from talkinghead.models.factory import build_embedder, build_generator
from talkinghead.models.warp_generator import WarpGenerator, shuffle2
from tests.conftest import MICRO_WARP


def _plain_tps_grid(target: np.ndarray, source: np.ndarray, frame_size: int, grid_size: int) -> np.ndarray:
    """The grid as :func:`tps_grid` computed it before its basis was precomputed: ``pts + tps_eval``."""
    scale = 2.0 / frame_size
    anchors = border_anchors(frame_size)
    ctrl = (np.concatenate([target, anchors]) + 0.5) * scale - 1.0
    vals = (np.concatenate([source, anchors]) + 0.5) * scale - 1.0
    coef = tps_fit(ctrl, vals - ctrl, 1e-3)
    pts = identity_grid(grid_size).reshape(-1, 2).astype(np.float64)
    return (pts + tps_eval(coef, ctrl, pts)).reshape(grid_size, grid_size, 2).astype(np.float32)


@pytest.mark.parametrize(("frame_size", "grid_size"), [(256, 64), (32, 16), (64, 64)])
def test_tps_grid_equals_the_plain_evaluation(frame_size: int, grid_size: int) -> None:
    track, _ = driving_motion()  # real faces moving: the packaged GRID landmark track (256² crop pixels)
    rng = np.random.default_rng(frame_size + grid_size)
    src = track[0] * (frame_size / 256)
    for i in range(5, len(track), 29):
        tgt = (track[i] + rng.normal(0.0, 1.0, (68, 2))) * (frame_size / 256)
        fast = tps_grid(tgt, src, frame_size, grid_size)
        assert fast.dtype == np.float32 and fast.shape == (grid_size, grid_size, 2)
        # both are float32 evaluations of the same spline, each within ~5e-5 of a float64 one (1e-4: 0.013 px at 256²)
        assert np.abs(fast - _plain_tps_grid(tgt, src, frame_size, grid_size)).max() < 1e-4
    assert np.array_equal(tps_grid(np.full((68, 2), np.nan), src, frame_size, grid_size), identity_grid(grid_size))
    grid = tps_grid(src, src, frame_size, grid_size)  # no motion: the identity, and a fresh array each call
    assert np.abs(grid - identity_grid(grid_size)).max() < 1e-3
    grid[:] = 0.0
    assert np.abs(tps_grid(src, src, frame_size, grid_size) - identity_grid(grid_size)).max() < 1e-3


@pytest.mark.parametrize("channels_last", [False, True])
def test_shuffle2_is_pixel_shuffle(channels_last: bool) -> None:
    x = torch.randn(2, 24, 8, 6)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    ours = shuffle2(x)
    assert ours.is_contiguous() and torch.equal(ours, F.pixel_shuffle(x, 2))


def _warp_config(resolution: int = 128, motion: int = 64) -> ModelConfig:
    """A small warp model, by default at 128² with a 64² motion net: every stage of the generator has a few pixels."""
    return train_config("warp", **{**MICRO_WARP, "model.resolution": resolution,
                                   "model.motion_resolution": motion}).model


def _perturbed_generator() -> WarpGenerator:
    torch.manual_seed(0)
    gen = WarpGenerator(_warp_config()).eval()
    with torch.no_grad():
        for p in gen.parameters():  # away from the identity start, so every branch contributes
            p.add_(torch.randn_like(p) * 0.05)
    return gen


def _generator_inputs(gen: WarpGenerator, b: int,
                      k: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random arguments for the generator's forward: ``b`` targets, ``k`` sources each."""
    s, m = gen.cfg.resolution, gen.cfg.motion_resolution
    images = torch.rand(b, k, 3, s, s) * 2 - 1
    feats = [f.reshape(b, k, *f.shape[1:]) for f in gen.encode(images.flatten(0, 1), torch.zeros(b * k, 3, s, s))]
    prior = torch.from_numpy(identity_grid(m).transpose(2, 0, 1))[None, None] + torch.randn(b, k, 2, m, m) * 0.02
    return images, feats, prior, torch.rand(b, 3, m, m) * 2 - 1, torch.randn(b, gen.psi_dim) * 0.1


def test_one_source_shortcut_equals_the_general_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _perturbed_generator()
    args = _generator_inputs(gen, 2, 1)
    with torch.no_grad():
        fast, aux = gen(*args)
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)  # the general (exported) graph
        general, aux_general = gen(*args)
    assert float((fast - general).abs().max()) < 1e-5
    assert float((aux["blend"] - aux_general["blend"]).abs().max()) < 1e-5


@pytest.mark.parametrize("k", [1, 2])
def test_channels_last_convolutions_equal_channels_first(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _perturbed_generator()
    args = _generator_inputs(gen, 2, k)
    assert wg.conv_format(torch.device("cpu")) == torch.channels_last
    with torch.no_grad():
        fast = gen(*args)[0]
        monkeypatch.setattr(wg, "conv_format", lambda device: torch.contiguous_format)
        plain = gen(*args)[0]
    assert fast.is_contiguous() and fast.shape == plain.shape
    assert float((fast - plain).abs().max()) < 1e-4  # float32 sums in another order (1e-4: 1/80 of a uint8 step)


def test_channels_last_training_step_gives_the_same_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _perturbed_generator().train()
    images, _, prior, target_sketch, _ = _generator_inputs(gen, 2, 2)
    sketches, embedding = torch.rand_like(images) * 2 - 1, torch.randn(2, gen.cfg.embed_dim)

    def grads() -> list[torch.Tensor]:  # the whole training forward: encode, P, the generator
        gen.zero_grad()
        gen.generate(images, sketches, prior, target_sketch, embedding).square().mean().backward()
        return [p.grad.clone() for p in gen.parameters() if p.grad is not None]

    fast = grads()
    monkeypatch.setattr(wg, "conv_format", lambda device: torch.contiguous_format)
    plain = grads()
    assert len(fast) == len(plain) > 0
    for a, b in zip(fast, plain, strict=True):
        assert float((a - b).abs().max()) <= 1e-4 * (1.0 + float(b.abs().max()))


def test_backend_keeps_the_source_pick_without_changing_frames() -> None:
    torch.manual_seed(0)
    cfg = _warp_config(64, 32)
    bundle = ModelBundle(cfg, build_generator(cfg), None, build_embedder(cfg))
    backend = TorchBackend(bundle, torch.device("cpu"))
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    track, _ = driving_motion()
    lmk = (track[[0, 60, 120]] * 0.25).astype(np.float32)  # three poses, in the 64² crops' pixels
    psi = np.zeros((1, bundle.generator.psi_dim), np.float32)
    backend.set_sources(crops, lmk, psi)
    targets = (lmk[[0, 1, 2, 0]] + rng.normal(0, 0.5, (4, 68, 2))).astype(np.float32)
    batch = backend.render(targets)
    one_by_one = np.concatenate([backend.render(t[None]) for t in targets])  # the pick changes between frames
    assert np.abs(batch - one_by_one).max() < 1e-5
    again = backend.render(targets[:1])
    assert np.array_equal(again, backend.render(targets[:1]))
    backend.set_sources(255 - crops, lmk, psi)  # other pictures, the same pick: the kept one is dropped
    assert np.abs(backend.render(targets[:1]) - again).max() > 1e-3


@pytest.mark.parametrize("smooth", [True, False])
def test_blend_has_no_pixel_shuffle_stripes(smooth: bool) -> None:
    """Pixel shuffle turns a difference between the output conv's four sub-pixel channels into a 2-pixel stripe
    pattern; in the blend that alternates rows of the moved and the unmoved source (seen after a far head turn).
    The fixed binomial filter on the logits (``model.smooth_blend``) takes it out; without it, it stays."""
    gen = _perturbed_generator()
    gen.cfg.smooth_blend = smooth
    with torch.no_grad():
        gen.out.weight.zero_()
        bias = torch.zeros(6, 4)
        bias[3] = torch.tensor([3.0, 3.0, -3.0, -3.0])  # warped-source logit: high on even rows, low on odd rows
        gen.out.bias.copy_(bias.flatten())
        _, aux = gen(*_generator_inputs(gen, 1, 1))
    rows = aux["blend"][0, 0, 4:-4, 4:-4].mean(1)  # warped weight per row, away from the padded border
    stripes = float((rows[::2] - rows[1::2]).abs().mean())
    assert (stripes < 0.02) if smooth else (stripes > 0.3), stripes


def test_learned_flow_fades_out_at_the_top_and_sides_not_the_bottom() -> None:
    """Next to the crop's top and side borders the learned flow correction fades to the landmark flow alone
    (``model.border_flow``): there it stretched hair above a head that moved down into a banded column. The
    bottom, where the body crosses the border, keeps it; off, nothing fades."""
    gen = _perturbed_generator()
    args = _generator_inputs(gen, 1, 1)
    m = gen.cfg.motion_resolution
    with torch.no_grad():
        gen.cfg.border_flow = 0.0
        _, free = gen(*args)
        gen.cfg.border_flow = 0.1
        _, faded = gen(*args)
    ratio = (faded["flow_delta"].abs() / free["flow_delta"].abs().clamp_min(1e-9))[0]  # (2, m, m)
    edge = max(1, round(0.2 * m / 2))  # rows/columns within the fade (0.1 of the side)
    assert float(ratio[:, 0].max()) < 0.1 and float(ratio[:, :, 0].max()) < 0.1 and float(ratio[:, :, -1].max()) < 0.1
    assert float(ratio[:, -1, edge:-edge].min()) > 0.999  # the bottom row, away from the corners
    assert float(ratio[:, edge + 1 : -edge - 1, edge + 1 : -edge - 1].min()) > 0.999  # the middle


def test_generated_pixels_are_used_only_inside_the_region() -> None:
    """At inference the generated pixels count only in the target's eyes and mouth (``model.gen_region``): outside
    the region the output does not depend on them (the decoder is trained only where the blend uses it, and its
    wrong colours there showed as grey blobs); inside, and with no region, it does."""
    gen = _perturbed_generator()
    args = _generator_inputs(gen, 1, 1)
    s, m = gen.cfg.resolution, gen.cfg.motion_resolution
    region = torch.zeros(1, 1, m, m)
    region[..., : m // 2, :] = 1.0  # the top half
    with torch.no_grad():
        gen.out.bias.view(6, 4)[3:] = 0.0  # the three paths about equally weighted
        gated, _ = gen(*args, region)
        free, aux = gen(*args)
        gen.out.bias.view(6, 4)[:3] += 1.0  # other generated colours
        gated2, _ = gen(*args, region)
        free2, _ = gen(*args)
    assert float(aux["blend"][:, 2].mean()) > 0.2  # the generated path has weight to lose
    change = (gated2 - gated).abs()[0].sum(0)  # (S, S)
    assert float(change[s // 2 + 4 :].max()) < 1e-6  # below the region
    assert float(change[: s // 2 - 4].mean()) > 1e-3  # inside it
    assert float((free2 - free).abs()[0].sum(0)[s // 2 + 4 :].mean()) > 1e-3  # ungated, the bottom changes too
    assert float((gated - free).abs()[0, :, : s // 2 - 4].max()) < 1e-5  # inside, the gate changes nothing
