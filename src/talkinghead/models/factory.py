"""Build the networks of an architecture from its :class:`~talkinghead.config.ModelConfig`."""

from __future__ import annotations

import dataclasses

from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.generator import Generator
from talkinghead.models.warp_generator import WarpGenerator


def side_config(cfg: ModelConfig, resolution: int) -> ModelConfig:
    """The config of a warp model's embedder or discriminator: the paper's encoder at a lower ``resolution``."""
    attention = min(cfg.attention_res, resolution // 4)
    return dataclasses.replace(cfg, arch="synthesis", resolution=resolution, attention_res=attention,
                               gen_downs=min(cfg.gen_downs, 3))


def build_generator(cfg: ModelConfig) -> nn.Module:
    return WarpGenerator(cfg) if cfg.arch == "warp" else Generator(cfg)


def build_embedder(cfg: ModelConfig) -> Embedder:
    return Embedder(side_config(cfg, cfg.embed_resolution) if cfg.arch == "warp" else cfg)


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    return Discriminator(side_config(cfg, cfg.disc_resolution) if cfg.arch == "warp" else cfg)
