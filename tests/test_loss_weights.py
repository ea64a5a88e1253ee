"""Converted (.safetensors) copies of the perceptual-loss networks load and give the packages' features."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from talkinghead.config import LossConfig
from talkinghead.errors import InputError
from talkinghead.losses.perceptual import ContentLoss

ROOT = Path(__file__).resolve().parents[1]


def test_exported_loss_weights_match_the_packages(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "export_loss_weights.py"), str(tmp_path)], check=True,
                   capture_output=True)
    ref = ContentLoss(LossConfig(resolution=0))
    copy = ContentLoss(LossConfig(hed_weights=str(tmp_path / "vgg16_hed.safetensors"),
                                  facenet_weights=str(tmp_path / "facenet.safetensors")))
    g = torch.Generator().manual_seed(0)
    fake = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    real = (fake + 0.2 * torch.randn(2, 3, 128, 128, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        total_ref, parts_ref = ref(fake, real)
        total_copy, parts_copy = copy(fake, real)
    for name in ("vgg", "face"):
        assert parts_ref[name] > 0
        assert abs(float(parts_copy[name]) / float(parts_ref[name]) - 1) < 0.01, name  # fp16 weights: < 1 % apart
    # a file of the wrong network is refused with a clear error
    with pytest.raises(InputError):
        ContentLoss(LossConfig(face=0.0, hed_weights=str(tmp_path / "facenet.safetensors")))
    with pytest.raises(InputError):
        ContentLoss(LossConfig(vgg=0.0, facenet_weights=str(tmp_path / "vgg16_hed.safetensors")))
