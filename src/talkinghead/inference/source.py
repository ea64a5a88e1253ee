"""Source faces for animation: photos or frames of a video, cropped the way the training data was."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talkinghead.config import PrepareConfig
from talkinghead.errors import InputError, NoFaceError
from talkinghead.faces.crop import CropBox, crop_image, face_crop_box, fit_inside, to_crop_coords
from talkinghead.faces.detect import FaceDetector
from talkinghead.faces.landmarks import detect_landmarks, turned_face_hint
from talkinghead.faces.measures import apply, interocular, similarity
from talkinghead.faces.track import FaceTracker
from talkinghead.io.images import IMAGE_EXTENSIONS, read_image
from talkinghead.io.video import VideoReader

log = logging.getLogger(__name__)


@dataclass
class SourceFace:
    """One source frame: the full image, its crop box, the crop (``size``²) and landmarks in crop pixels."""

    image: np.ndarray
    box: CropBox
    crop: np.ndarray
    landmarks: np.ndarray
    origin: str


SCENE_DISTANCE = 20.0
"""Two source crops whose surroundings (outside the face, at 32², median absolute difference, 0-255) differ by more
than this are taken to show different scenes. ``benchmarks/source_scenes.py``: 90 pairs of corpus clips' frames saved
as photos (one scene) 3.2 median, 12.5 at the 95th percentile, 23.2 at most; 92 pairs of LFW photos of one person
(other occasions) 57.4 median, 28.8 at the 5th percentile, 23.7 at least."""


def _surroundings(face: SourceFace, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The crop at ``size``² and where it shows the surroundings: outside the face's landmark hull grown by 0.35 ×
    the inter-ocular distance."""
    crop_size = face.crop.shape[0]
    hull = np.zeros((crop_size, crop_size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(face.landmarks).astype(np.int32)), 1)
    r = max(1, int(round(0.35 * float(interocular(face.landmarks)))))
    hull = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    small = cv2.resize(face.crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    outside = cv2.resize((1 - hull).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.99
    return small, outside


def scene_distance(a: SourceFace, b: SourceFace) -> float:
    """How unlike the two crops' surroundings are (see :data:`SCENE_DISTANCE`); 0 where too little of them shows."""
    (ca, ma), (cb, mb) = _surroundings(a), _surroundings(b)
    both = ma & mb
    if both.sum() < 20:
        return 0.0
    return float(np.median(np.abs(ca - cb).mean(-1)[both]))


def same_scene(sources: list[SourceFace]) -> list[SourceFace]:
    """The sources that show the first one's scene: every frame of its own video, and any other photo or video
    frame whose surroundings are like the first's (:func:`scene_distance`). A warp moves each source's own pixels,
    so sources from other scenes (photos of other days) would mix their backgrounds, clothes and light in the
    output, frame by frame as the nearest sources change; they are left out, with a note."""
    first = sources[0]
    home = first.origin.split("#")[0]
    kept, left = [first], []
    for face in sources[1:]:
        if face.origin.split("#")[0] == home or scene_distance(first, face) <= SCENE_DISTANCE:
            kept.append(face)
        else:
            left.append(face)
    if left:
        names = sorted({f.origin.split("#")[0] for f in left})
        log.warning("%s show%s another scene than %s (background, clothes, light): only the %d source(s) of that "
                    "scene are used, since a warp cannot mix scenes", ", ".join(names),
                    "s" if len(names) == 1 else "", home, len(kept))
    return kept


def _normalised(lmk: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return apply(similarity(lmk, ref), lmk)


def _shape_features(landmarks: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per face ``(N, 68, 2)`` → ``(N, 272)``: the expression (the shape aligned onto ``ref`` by a similarity), then
    the pose and place (the raw points, half weight). The space in which sources are chosen and matched."""
    shapes = np.stack([_normalised(l_, ref) for l_ in landmarks]).reshape(len(landmarks), -1)
    raw = landmarks.reshape(len(landmarks), -1)
    return np.concatenate([shapes, 0.5 * raw], axis=1)


def diverse_indices(landmarks: np.ndarray, n: int) -> list[int]:
    """``n`` frames whose (pose-normalised) landmark shapes differ most: farthest-point sampling from the median.

    The first index is the most typical frame (nearest the mean shape), the same whatever ``n``: it is the
    reference for relative motion (and, in evaluation, the frame the driver is aligned to, so T = 1 and T = 8 are
    scored on the same targets); the others follow in frame order."""
    if len(landmarks) <= n:
        return list(range(len(landmarks)))
    feats = _shape_features(landmarks, np.median(landmarks, axis=0))  # expression, then pose
    chosen = [int(np.argmin(((feats - feats.mean(0)) ** 2).sum(1)))]
    dist = ((feats - feats[chosen[0]]) ** 2).sum(1)
    while len(chosen) < n:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((feats - feats[i]) ** 2).sum(1))
    return [chosen[0], *sorted(chosen[1:])]


def fused_count(k: int, count: int) -> int:
    """How many of ``count`` sources each target fuses when ``k`` are asked for (``k <= 0``: all)."""
    return count if k <= 0 or k >= count else k


def nearest_sources(targets: np.ndarray, sources: np.ndarray, k: int) -> np.ndarray:
    """For each target ``(N, 68, 2)``, the indices ``(N, min(k, K))`` of the ``k`` sources ``(K, 68, 2)`` nearest
    to it in expression and pose (the space :func:`diverse_indices` spreads the sources over: a warp moves pixels
    but cannot open a closed eye or a closed mouth, so expression counts as much as position), nearest first, ties
    by index. ``k <= 0`` keeps all sources in their order."""
    n, count = len(targets), len(sources)
    if fused_count(k, count) == count:
        return np.broadcast_to(np.arange(count), (n, count)).copy()
    ref = np.median(sources, axis=0)
    ft, fs = _shape_features(targets, ref), _shape_features(sources, ref)
    dist = ((ft[:, None] - fs[None]) ** 2).sum(-1)  # (N, K)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def source_groups(targets: np.ndarray, sources: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`nearest_sources`, grouped: ``[(source indices (k,), target rows (n_i,))]`` so each group renders in
    one batch (consecutive video frames mostly share their nearest sources). Source indices are sorted."""
    pick = np.sort(nearest_sources(targets, sources, k), axis=1)
    if len(pick) == 1:  # one frame (live): np.unique over rows costs more than the rest of the choice
        return [(pick[0], np.zeros(1, np.intp))]
    keys, inverse = np.unique(pick, axis=0, return_inverse=True)
    return [(keys[g], np.flatnonzero(inverse.reshape(-1) == g)) for g in range(len(keys))]


def _from_video(path: str, shots: int, cfg: PrepareConfig) -> list[SourceFace]:
    tracker = FaceTracker(cfg.tracker, name=f"the source video {path}", option="--face-index")
    frames, lmks = [], []
    first: np.ndarray | None = None
    with VideoReader(path) as reader:
        step = max(1, reader.info.n_frames // 300)  # look at ~300 frames at most
        for i, frame in enumerate(reader):
            first = frame if first is None else first
            res = tracker.update(frame)
            if res.landmarks is not None and i % step == 0:
                frames.append(frame)
                lmks.append(res.landmarks)
    if not lmks:
        if tracker.most_faces:  # faces were found, but never the one asked for
            raise NoFaceError(f"the source video {path} shows at most {tracker.most_faces} face(s) at once; "
                              f"--face-index {cfg.tracker.face_index} is out of range")
        hint = turned_face_hint(first, what="video") if first is not None else ""
        raise NoFaceError(f"no face found in the source video {path}{hint}")
    picked = diverse_indices(np.stack(lmks), shots)
    box = face_crop_box(np.stack([lmks[i] for i in picked]), cfg.margin, cfg.shift_up)
    if cfg.fit_photo:
        box = fit_inside(box, *frames[0].shape[:2])
    return [SourceFace(frames[i], box, crop_image(frames[i], box, cfg.size), to_crop_coords(lmks[i], box, cfg.size),
                       f"{path}#{i}") for i in picked]


def load_sources(paths: list[str | Path | np.ndarray], shots: int = 8, cfg: PrepareConfig | None = None,
                 one_scene: bool = True) -> list[SourceFace]:
    """Photos (one face each: the largest), arrays, or videos (``shots`` diverse frames each) → source faces; with
    ``one_scene``, only those of the first one's scene (:func:`same_scene`)."""
    cfg = cfg or PrepareConfig()
    detector = FaceDetector(max_side=1024)
    out: list[SourceFace] = []
    photos: list[SourceFace] = []  # not the frames of a video: those are one person
    for index, src in enumerate(paths):
        if isinstance(src, np.ndarray):
            image, name = src, f"array {index}"
        else:
            p = Path(src)
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                if not p.is_file():
                    raise InputError(f"source {p} does not exist")
                out += _from_video(str(p), shots, cfg)
                continue
            image, name = read_image(p), str(p)
        lmk = detect_landmarks(image, cfg.tracker.face_index, detector, source=name)
        box = face_crop_box(lmk, cfg.margin, cfg.shift_up)
        if cfg.fit_photo:
            box = fit_inside(box, *image.shape[:2])
        out.append(SourceFace(image, box, crop_image(image, box, cfg.size), to_crop_coords(lmk, box, cfg.size), name))
        photos.append(out[-1])
    if not out:
        raise InputError("no source image given")
    warn_mixed_identities(photos)
    return same_scene(out) if one_scene else out


def warn_mixed_identities(photos: list[SourceFace]) -> list[float]:
    """Several photos are meant to show one person; one that looks like someone else (face descriptor distance
    to the first over :data:`~talkinghead.faces.identity.SAME_PERSON`) gets a warning, since the result would mix
    the two faces. Returns the distances to the first photo (empty for fewer than two)."""
    if len(photos) < 2:
        return []
    from talkinghead.faces.identity import SAME_PERSON, face_descriptor, identity_distance

    descs = [face_descriptor(f.crop, f.landmarks) for f in photos]
    dists = [identity_distance(descs[0], d) for d in descs[1:]]
    for f, d in zip(photos[1:], dists, strict=True):
        if d > SAME_PERSON:
            log.warning("%s does not look like the same person as %s (face distance %.2f; one person is usually "
                        "under %.1f): the animation will mix their faces", f.origin, photos[0].origin, d, SAME_PERSON)
    return dists
