"""The warp generator's blend: how much of the picture it paints itself where the source's own pixels should stay, and
the pixel error where only painting can give the truth (eyes, mouth)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generated_outside(blend: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean weight of the generated pixels outside ``region``.

    ``blend`` ``(B, 3, S, S)``: the per-pixel softmax over (warped source, unwarped source, generated); ``region``
    ``(B, 1, m, m)`` in {0, 1}: where generating is expected (the target's eyes and mouth,
    :func:`talkinghead.faces.sketch.feature_region`). The weight is area-averaged to ``m``² first.
    """
    m = region.shape[-1]
    weight = blend[:, 2:3].float()
    if weight.shape[-1] != m:
        weight = F.interpolate(weight, size=(m, m), mode="area")
    outside = 1.0 - region
    return (outside * weight).sum() / outside.sum().clamp_min(1.0)


def generated_inside(blend: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Mean weight of the generated pixels over ``visible`` ``(B, 1, S, S)`` in {0, 1} (the target's lips and open
    eyes, :func:`talkinghead.faces.sketch.visible_features`), where the sources' own pixels show them; 0 where no
    episode has such pixels. ``blend`` as in :func:`generated_outside`."""
    weight = blend[:, 2:3].float()
    if weight.shape[-1] != visible.shape[-1]:
        weight = F.interpolate(weight, size=visible.shape[-2:], mode="area")
    return (visible * weight).sum() / visible.sum().clamp_min(1.0)


def region_l1(fake: torch.Tensor, real: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of ``fake`` against ``real`` ``(B, 3, S, S)`` over ``region`` ``(B, 1, m, m)`` in
    [0, 1] (the target's eyes and mouth, upsampled to S)."""
    weight = F.interpolate(region.float(), size=fake.shape[-2:], mode="bilinear", align_corners=False)
    return ((fake - real).abs() * weight).sum() / (weight.sum() * fake.shape[1]).clamp_min(1.0)
