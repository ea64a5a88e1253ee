from __future__ import annotations

import pytest
import torch
from torch import nn

from talkinghead.api import train_config
from talkinghead.models.blocks import AdaIN
from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.generator import Generator


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# Parameter counts per preset (E, G, D): a change of architecture must update these on purpose.
EXPECTED = {
    "tiny": (1_222_033, 5_122_885, 2_402_450),
    "small": (5_549_785, 20_963_813, 8_205_146),
    "paper": (14_907_393, 49_291_781, 19_627_522),
}


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_parameter_counts(preset: str) -> None:
    cfg = train_config(preset).model
    counts = (n_params(Embedder(cfg)), n_params(Generator(cfg)), n_params(Discriminator(cfg)))
    assert counts == EXPECTED[preset]


def test_shapes_tiny() -> None:
    cfg = train_config("tiny").model
    e_net, g_net, d_net = Embedder(cfg), Generator(cfg), Discriminator(cfg)
    x = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    e = e_net(x, x)
    assert e.shape == (2, cfg.embed_dim)
    out = g_net.generate(x[:, 0], e)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    score, feats = d_net(out, x[:, 0], torch.zeros(2, cfg.embed_dim))
    assert score.shape == (2,) and len(feats) >= 4
    assert g_net.project(e).shape == (2, g_net.psi_dim)
    assert g_net.psi_dim == sum(m.n_params for m in g_net.modules() if isinstance(m, AdaIN))


def test_adain_conditions_the_generator() -> None:
    torch.manual_seed(0)
    cfg = train_config("tiny").model
    g = Generator(cfg).eval()
    y = torch.rand(1, 3, 64, 64) * 2 - 1
    e1, e2 = torch.randn(1, cfg.embed_dim), torch.randn(1, cfg.embed_dim)
    with torch.no_grad():
        a, a2, b = g.generate(y, e1), g.generate(y, e1), g.generate(y, e2)
    assert torch.equal(a, a2)
    assert (a - b).abs().mean() > 1e-3


def test_spectral_norm_everywhere() -> None:
    cfg = train_config("tiny").model
    for net in (Embedder(cfg), Generator(cfg), Discriminator(cfg)):
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers
        for m in layers:
            assert hasattr(m, "parametrizations") and "weight" in m.parametrizations, m
