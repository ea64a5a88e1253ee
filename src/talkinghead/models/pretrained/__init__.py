"""Pretrained networks ported to PyTorch, used by the losses (never trained here)."""
