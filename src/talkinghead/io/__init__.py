"""File input/output: videos and audio (PyAV), images, atomic writes."""

from talkinghead.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from talkinghead.io.images import read_image, write_image
from talkinghead.io.video import VideoInfo, VideoReader, VideoWriter, probe_video, read_video

__all__ = [
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "probe_video",
    "read_image",
    "read_video",
    "write_image",
]
