"""The driver's gaze: irises found between the lids, moved along the eye, and followed relative to the usual gaze."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.inference.gaze import (
    DEADBAND,
    MAX_SHIFT,
    NEUTRAL_FRAMES,
    VERTICAL,
    GazeFollower,
    conjugate,
    iris_positions,
    move_irises,
)


def _eyes(iris_u: float = 0.5, opening: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured face with two white eyes 40 px wide, each with a dark iris at ``iris_u`` along it, and
    landmarks whose eye contours outline them (the rest of the 68 at the eyes' middle)."""
    img = np.full((256, 256, 3), (200, 160, 140), np.uint8)
    lmk = np.full((68, 2), 128.0, np.float32)
    for first, x0 in ((36, 70.0), (42, 146.0)):
        y = 120.0
        half = opening / 2
        pts = np.array([[x0, y], [x0 + 13, y - half], [x0 + 27, y - half], [x0 + 40, y], [x0 + 27, y + half],
                        [x0 + 13, y + half]], np.float32)
        lmk[first:first + 6] = pts
        cv2.ellipse(img, (int(x0 + 20), int(y)), (20, int(half)), 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(img, (int(round(x0 + 40 * iris_u)), int(y)), 7, (40, 30, 25), -1)
        cv2.ellipse(img, (int(x0 + 20), int(y)), (21, int(half) + 1), 0, 0, 360, (200, 160, 140), 2)  # the lids
    return img, lmk


def test_the_iris_is_found_between_the_lids() -> None:
    for u in (0.35, 0.5, 0.65):
        img, lmk = _eyes(u)
        got = iris_positions(img, lmk)
        assert np.allclose(got[:, 0], u, atol=0.04), (u, got)
        assert np.all(np.abs(got[:, 1]) < 0.05)
    img, lmk = _eyes(0.5, opening=4.0)  # nearly shut: no gaze read
    assert np.isnan(iris_positions(img, lmk)).all()


@pytest.mark.parametrize("du", [-0.2, 0.2])
def test_irises_move_along_the_eye_and_nothing_else_does(du: float) -> None:
    img, lmk = _eyes(0.5)
    out = move_irises(img, lmk, (du, 0.0))
    moved = iris_positions(out, lmk)[:, 0] - 0.5
    assert np.all(np.sign(moved) == np.sign(du)) and np.all(np.abs(moved) > 0.6 * abs(du)), moved
    eyes = np.zeros(img.shape[:2], bool)
    for first in (36, 42):
        x0, y0 = lmk[first:first + 6].min(0).astype(int)
        x1, y1 = lmk[first:first + 6].max(0).astype(int)
        eyes[y0:y1 + 1, x0:x1 + 1] = True
    assert np.array_equal(out[~eyes], img[~eyes])  # the lids, the corners and the skin stay
    assert move_irises(img, lmk, (0.0, 0.0)) is img
    shut_img, shut = _eyes(0.5, opening=4.0)
    assert np.array_equal(move_irises(shut_img, shut, (du, 0.0)), shut_img)  # a closed eye is not touched


def test_gaze_is_followed_relative_to_the_usual_one() -> None:
    follow = GazeFollower()
    straight, _ = _eyes(0.5)
    _, lmk = _eyes(0.5)
    for _ in range(NEUTRAL_FRAMES + 5):  # the usual gaze; frames past NEUTRAL_FRAMES no longer count
        g = follow.observe(straight, lmk)
    assert len(follow.seen) == NEUTRAL_FRAMES
    assert np.allclose(follow.offset(g), 0.0)
    side, _ = _eyes(0.62)
    off = follow.offset(follow.observe(side, lmk))
    assert off[0] == pytest.approx(0.12 - DEADBAND, abs=0.04)
    assert follow.offset(np.array([np.nan, np.nan])) is off  # eyes closed: the last gaze is held
    far = follow.offset(follow.neutral + np.array([0.6, 0.6]))
    assert np.allclose(far, MAX_SHIFT)  # clamped
    assert follow.offset(follow.neutral + np.array([0.0, 0.1]))[1] == pytest.approx((0.1 - DEADBAND) * VERTICAL)


def test_frame_step_reads_the_drivers_gaze_only_when_asked(micro_warp_model, astronaut_png) -> None:
    from talkinghead.inference.animate import AnimateOptions, Animator, FrameStep

    anim = Animator(micro_warp_model, device="cpu")
    anim.set_source([astronaut_png], progress=False)
    frame, lmk = _eyes(0.6)
    on = FrameStep(anim, AnimateOptions(progress=False, driver_mouth=False))
    parts = on.parts(lmk, frame)
    assert parts is not None and parts.mouth is None and parts.gaze[0] == pytest.approx(0.6, abs=0.04)
    assert on.parts(None, frame).gaze is None  # no face: nothing read (the output holds its last gaze)
    assert on.output([anim.sources[0].landmarks], [None], [parts])[0].shape[-1] == 3
    off = FrameStep(anim, AnimateOptions(progress=False, driver_mouth=False, driver_gaze=False, full_blinks=False))
    assert off.parts(lmk, frame) is None


def test_unsteady_or_rare_readings_are_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Glasses that reflect (lp_d12: readings jumping 0.07 eye widths a frame, the two eyes 0.23-correlated) would
    make the irises dart about: such a driver keeps the photo's gaze."""
    from talkinghead.inference import gaze

    assert np.isnan(conjugate(np.array([[0.3, 0.0], [0.6, 0.0]]))).all()  # the eyes disagree: no reading
    assert conjugate(np.array([[0.5, 0.0], [0.56, 0.02]])) == pytest.approx([0.53, 0.01])
    frame, lmk = _eyes(0.5)
    rng = np.random.default_rng(0)
    for readings, followed in ((0.5 + rng.uniform(-0.2, 0.2, 60), False), (0.5 + rng.normal(0, 0.005, 60), True),
                               ([0.5 if i % 5 == 0 else np.nan for i in range(60)], False)):
        follow = GazeFollower()
        feed = iter(readings)
        monkeypatch.setattr(gaze, "iris_positions", lambda *_: np.array([[next(feed), 0.0]] * 2))
        for _ in range(60):
            follow.observe(frame, lmk)
        assert follow.reliable is followed
        off = follow.offset(np.array([0.7, 0.0]))
        assert bool(off[0] > 0.1) is followed


def test_a_recorded_clips_gaze_track() -> None:
    """What the idle-motion bank keeps of a clip's gaze: relative to its usual one, unread frames holding the
    last reading, and nothing for a clip that would not be followed."""
    from talkinghead.inference.gaze import gaze_track, iris_shift

    _, lmk = _eyes(0.5)
    shut_img, shut = _eyes(0.5, opening=4.0)
    frames = [_eyes(0.5)[0]] * 30 + [_eyes(0.62)[0]] * 10 + [shut_img] * 5 + [_eyes(0.5)[0]] * 15
    lmks = np.repeat(lmk[None], len(frames), 0)
    lmks[40:45] = shut
    track = gaze_track(frames, lmks)
    assert track.shape == (60, 2)
    assert np.allclose(track[:30, 0], 0.0, atol=0.02) and np.allclose(track[30:40, 0], 0.12, atol=0.04)
    assert np.array_equal(track[40:45], np.repeat(track[39:40], 5, 0))  # eyes shut: the last gaze is held
    assert np.allclose(track[45:, 0], 0.0, atol=0.02)
    assert np.allclose(iris_shift(track[35]), [track[35, 0] - DEADBAND, 0.0], atol=1e-6)
    unread = gaze_track([shut_img] * 10, np.repeat(shut[None], 10, 0))
    assert np.array_equal(unread, np.zeros((10, 2), np.float32))


def test_a_landmark_tracks_own_gaze_moves_the_irises(micro_warp_model, astronaut_png, tmp_path) -> None:
    """``speak``'s path: a landmark track with a gaze slides the output's irises; without one, or with
    ``driver_gaze`` off, the eyes stay as rendered; nothing outside the eyes changes."""
    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.io.video import read_video

    anim = Animator(micro_warp_model, device="cpu")
    anim.set_source([astronaut_png], progress=False)
    lmk = np.repeat(anim.sources[0].landmarks[None], 4, 0)
    gaze = np.array([[0.0, 0.0], [0.2, 0.0], [-0.2, 0.0], [0.0, 0.0]])
    opt = AnimateOptions(progress=False, watermark=False, crf=0)
    videos = {}
    for name, track, o in (("plain", (lmk, 25.0), opt), ("gaze", (lmk, 25.0, gaze), opt),
                           ("off", (lmk, 25.0, gaze), AnimateOptions(progress=False, watermark=False, crf=0,
                                                                      driver_gaze=False))):
        anim.animate(track, tmp_path / f"{name}.mp4", o)
        videos[name] = np.stack(read_video(tmp_path / f"{name}.mp4")[0]).astype(np.int16)
    assert np.array_equal(videos["plain"], videos["off"])
    diff = np.abs(videos["gaze"] - videos["plain"]).max(-1)  # (frames, H, W)
    assert diff[[0, 3]].max() <= 2 and diff[1].max() > 30 and diff[2].max() > 30
    out = anim.sources[0].landmarks * (videos["plain"].shape[1] / 256.0)
    ys, xs = np.nonzero(diff[1] > 30)
    eyes = out[36:48]
    assert xs.min() >= eyes[:, 0].min() - 4 and xs.max() <= eyes[:, 0].max() + 4
    assert ys.min() >= eyes[:, 1].min() - 6 and ys.max() <= eyes[:, 1].max() + 6
    with pytest.raises(ValueError, match="gaze"):
        anim.animate((lmk, 25.0, gaze[:2]), tmp_path / "bad.mp4", opt)
