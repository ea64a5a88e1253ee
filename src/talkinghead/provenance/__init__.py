"""Provenance of generated videos: an invisible per-frame watermark and container tags that say "synthetic".

``embed`` marks one frame, ``decode_frames`` / ``decode_image`` find the mark, and ``verify_file`` checks a
video or image file (watermark and tags, reported separately).
"""

from talkinghead.provenance.watermark import (
    Detection,
    Payload,
    WatermarkDecoder,
    decode_frames,
    decode_image,
    embed,
    psnr,
)

__all__ = ["Detection", "Payload", "WatermarkDecoder", "decode_frames", "decode_image", "embed", "psnr"]
