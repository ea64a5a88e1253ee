"""Provenance of generated videos: an invisible per-frame watermark and container tags that say "synthetic".

Writing (the animate pipeline)::

    payload = Payload.new()                                  # one per video: tool, version, random id
    with VideoWriter(out, fps, metadata=synthetic_tags(payload)) as w:
        for frame in frames:
            w.write(embed(frame, payload))                   # every frame, (H, W, 3) uint8 RGB

Checking: ``verify_file(path)`` (a video, GIF or image) → :class:`VerifyResult`; for frames already in memory,
``decode_frames(frames)`` / ``decode_image(img)`` → :class:`Detection`.
"""

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
    "SYNTHETIC_TAGS",
    "Detection",
    "Payload",
    "VerifyResult",
    "WatermarkDecoder",
    "decode_frames",
    "decode_image",
    "embed",
    "psnr",
    "synthetic_tags",
    "tags_say_synthetic",
    "verify_file",
]
