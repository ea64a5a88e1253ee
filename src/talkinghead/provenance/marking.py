"""What the animate pipeline (CLI, API, web) uses to mark its output as synthetic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from talkinghead.provenance.verify import synthetic_tags
from talkinghead.provenance.watermark import Payload, embed


@dataclass
class Marker:
    """Call it on each full output frame (after paste-back); pass ``tags`` to the video writer."""

    payload: Payload | None
    tags: dict[str, str] = field(default_factory=dict)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return embed(frame, self.payload) if self.payload is not None else frame

    @property
    def payload_text(self) -> str | None:
        return str(self.payload) if self.payload is not None else None


def marking(enabled: bool = True) -> Marker:
    """A marker with a fresh per-video payload, or one that does nothing (the documented opt-out)."""
    if not enabled:
        return Marker(None, {})
    payload = Payload.new()
    return Marker(payload, synthetic_tags(payload))
