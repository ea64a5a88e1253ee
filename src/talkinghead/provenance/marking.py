"""What the animate pipeline (CLI, API, web) uses to mark its output as synthetic: the invisible watermark, the
container tags and the signed C2PA manifest (Content Credentials)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.provenance.credentials import ContentCredentials, content_credentials
from talkinghead.provenance.verify import synthetic_tags
from talkinghead.provenance.watermark import Payload, embed

FRAME_NAME = "{:06d}.png"
"""How ``animate --frames DIR`` names the n-th frame it writes (the frames the marker signs at the end)."""


@dataclass
class Marker:
    """Call it on each full output frame (after paste-back); pass ``tags`` and ``finalize`` to the video writer.

    ``finalize(tmp, dest)`` signs the finished (still temporary) video with the Content Credentials, and every
    frame written to ``frames_dir``, before the video is renamed into place. Without credentials it does nothing.
    """

    payload: Payload | None
    tags: dict[str, str] = field(default_factory=dict)
    credentials: ContentCredentials | None = None
    frames_dir: Path | None = None
    """Where the pipeline also writes each frame as a PNG (named :data:`FRAME_NAME`): signed by :meth:`finalize`."""
    frames: int = 0
    """Frames marked so far."""

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.frames += 1
        return embed(frame, self.payload) if self.payload is not None else frame

    @property
    def payload_text(self) -> str | None:
        return str(self.payload) if self.payload is not None else None

    def finalize(self, tmp: Path, dest: Path) -> None:
        """Sign the output video ``tmp`` (about to become ``dest``) and the frames written to ``frames_dir``."""
        if self.credentials is None:
            return
        self.credentials.sign_file(tmp, title=Path(dest).name)
        if self.frames_dir is not None:
            for n in range(self.frames):
                frame = self.frames_dir / FRAME_NAME.format(n)
                if frame.is_file():
                    self.credentials.sign_file(frame)

    def sign_image(self, tmp: Path, dest: Path) -> None:
        """A ``write_image(..., finalize=...)`` hook: sign one output image before it is renamed into place."""
        if self.credentials is not None:
            self.credentials.sign_file(tmp, title=Path(dest).name)


def marking(enabled: bool = True, credentials: bool = True, *, model: Any = None,
            model_file: str | Path | None = None, consent: bool = False, sign_cert: str | Path | None = None,
            sign_key: str | Path | None = None, frames_dir: str | Path | None = None) -> Marker:
    """A marker for one output video.

    ``enabled``: watermark and tags (with a fresh per-video payload); off is the documented ``--no-watermark``.
    ``credentials``: a signed C2PA manifest (off is ``--no-credentials``), recording ``model`` (a loaded
    :class:`~talkinghead.models.bundle.ModelBundle`: the hash of its weights) and ``model_file`` (the file's
    hash), and ``consent`` as declared. The signing identity is loaded (or made, on first use) now, so a bad
    ``sign_cert``/``sign_key`` fails before any compute.
    """
    payload = Payload.new() if enabled else None
    creds = content_credentials(payload, model, model_file, consent, sign_cert, sign_key) if credentials else None
    return Marker(payload, synthetic_tags(payload) if enabled else {}, creds,
                  Path(frames_dir) if frames_dir else None)
