"""Faces: detection, 68-point landmarks, tracking through videos, crops, landmark sketches."""

from talkinghead.faces.crop import CropBox, crop_image, face_crop_box, to_crop_coords, to_frame_coords
from talkinghead.faces.detect import Face, FaceDetector
from talkinghead.faces.landmarks import LandmarkPredictor, detect_landmarks
from talkinghead.faces.sketch import draw_sketch
from talkinghead.faces.smooth import OneEuroFilter
from talkinghead.faces.track import FaceTracker, TrackResult

__all__ = [
    "CropBox",
    "Face",
    "FaceDetector",
    "FaceTracker",
    "LandmarkPredictor",
    "OneEuroFilter",
    "TrackResult",
    "crop_image",
    "detect_landmarks",
    "draw_sketch",
    "face_crop_box",
    "to_crop_coords",
    "to_frame_coords",
]
