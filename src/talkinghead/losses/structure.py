"""Structural similarity as a loss: ``1 - SSIM`` of the generated and the real frame.

Pixel L1 and the perceptual loss reward a blurred average wherever the target cannot be known exactly (another
clip's light, expression detail); SSIM compares local means, contrasts and structure, so lost contrast costs as
much as a wrong mean. The window matches the evaluation's SSIM (``skimage.metrics.structural_similarity``'s
defaults: a 7×7 uniform window per colour channel, sample covariances, K1 = 0.01, K2 = 0.03). Images in [-1, 1]
are moved to [0, 1] first: SSIM's luminance term compares means, so it is not invariant to a shift.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WINDOW = 7
C1 = 0.01**2
C2 = 0.03**2


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of ``(B, C, H, W)`` images in [-1, 1], over the valid (unpadded) windows: ``(B, C, H-6, W-6)``."""
    n = WINDOW * WINDOW
    cov = n / (n - 1.0)
    a, b = (a + 1.0) * 0.5, (b + 1.0) * 0.5

    def mean(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, WINDOW, stride=1)

    mu_a, mu_b = mean(a), mean(b)
    var_a = cov * (mean(a * a) - mu_a * mu_a)
    var_b = cov * (mean(b * b) - mu_b * mu_b)
    cov_ab = cov * (mean(a * b) - mu_a * mu_b)
    num = (2 * mu_a * mu_b + C1) * (2 * cov_ab + C2)
    den = (mu_a * mu_a + mu_b * mu_b + C1) * (var_a + var_b + C2)
    return num / den


def ssim_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``1 - mean SSIM`` (0 for identical images)."""
    return 1.0 - ssim_map(fake.float(), real.float()).mean()
