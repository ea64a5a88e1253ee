"""Provenance of generated videos: an invisible per-frame watermark, container tags that say "synthetic", and a
signed C2PA manifest (Content Credentials, ``credentials.py``) in every output file.

Writing (the animate pipeline)::

    payload = Payload.new()                                  # one per video: tool, version, random id
    with VideoWriter(out, fps, metadata=synthetic_tags(payload)) as w:
        for frame in frames:
            w.write(embed(frame, payload))                   # every frame, (H, W, 3) uint8 RGB

The pipeline uses ``marking()`` (``marking.py``), which also signs the finished file (``VideoWriter(finalize=...)``).
``read_credentials(path)`` reads a file's manifest on its own.

Checking: ``verify_file(path)`` (a video, GIF or image) → :class:`VerifyResult`; for frames already in memory,
``decode_frames(frames)`` / ``decode_image(img)`` → :class:`Detection`.
"""

from talkinghead.provenance.credentials import ContentCredentials, CredentialsReport, read_credentials
from talkinghead.provenance.verify import (
    SYNTHETIC_TAGS,
    VerifyResult,
    synthetic_tags,
    tags_say_synthetic,
    verify_file,
)
from talkinghead.provenance.watermark import (
    Detection,
    Payload,
    WatermarkDecoder,
    decode_frames,
    decode_image,
    embed,
    psnr,
)

__all__ = [
    "ContentCredentials",
    "CredentialsReport",
    "SYNTHETIC_TAGS",
    "Detection",
    "Payload",
    "VerifyResult",
    "WatermarkDecoder",
    "decode_frames",
    "decode_image",
    "embed",
    "psnr",
    "read_credentials",
    "synthetic_tags",
    "tags_say_synthetic",
    "verify_file",
]
