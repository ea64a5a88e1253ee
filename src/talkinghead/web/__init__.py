"""A local web page for animating a portrait (Gradio): ``talkinghead serve`` or :func:`serve`.

:class:`Limits` lives here and needs nothing but the standard library; :func:`build_app` and :func:`serve` are
imported on first use, so ``import talkinghead.web`` (and the CLI) stay fast and work without Gradio installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from talkinghead.web.app import build_app, serve

__all__ = ["Limits", "build_app", "serve"]


@dataclass(frozen=True)
class Limits:
    """What one visitor may ask of the server, so that a shared machine stays responsive."""

    max_upload_mb: float = 50.0
    """Largest file accepted, per file (checked by the browser, by Gradio's upload route and again by the app)."""
    max_driving_seconds: float = 30.0
    """Longest driving video accepted (its duration is read before any work starts)."""
    max_photos: int = 8
    """Most source photos per request."""
    max_photo_side: int = 2048
    """Photos with a longer side are scaled down to it before use (paste-back output size follows the photo)."""
    max_photo_pixels: float = 80e6
    """Photos with more pixels than this are refused without being decoded."""
    max_finetune_steps: int = 300
    """Upper end of the fine-tuning slider."""
    concurrency: int = 1
    """Requests animated at the same time; the others wait in the queue."""
    queue_size: int = 16
    """Requests that may wait; beyond that, visitors are told the queue is full."""
    keep_minutes: float = 30.0
    """Uploads and results are deleted this long after they were written."""
    live_sessions: int = 1
    """Visitors who may use the Live tab at the same time; the next one is told the server is busy."""

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


def __getattr__(name: str) -> Any:
    """Import the Gradio app only when :func:`build_app` or :func:`serve` is first used."""
    if name in ("build_app", "serve"):
        from talkinghead.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
