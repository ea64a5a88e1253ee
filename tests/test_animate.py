from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead.data.examples import astronaut
from talkinghead.errors import InputError
from talkinghead.faces.landmarks import detect_landmarks
from talkinghead.faces.measures import eye_opening
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.inference.retarget import Retargeter, reference_distance, reference_index
from talkinghead.io import probe_video, read_video, write_image
from talkinghead.models.bundle import load_bundle
from tests.conftest import write_frames


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "talkinghead", *args], capture_output=True, text=True, timeout=600)


def test_api_photo_to_video_keeps_fps_frames_and_audio(micro_model: Path, astronaut_png: Path,
                                                       astronaut_mp4: Path, tmp_path: Path) -> None:
    anim = Animator(micro_model, device="cpu")
    faces = anim.set_source([astronaut_png])
    assert len(faces) == 1 and faces[0].crop.shape == (256, 256, 3)
    res = anim.animate(astronaut_mp4, tmp_path / "out.mp4", AnimateOptions(progress=False, output_size=128))
    info = probe_video(res.path)
    assert res.frames == info.n_frames == 40 and info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (128, 128) and info.has_audio
    assert res.frames_without_face == 0


def test_cli_side_by_side_paste_back_and_frames(micro_model: Path, astronaut_png: Path, astronaut_mp4: Path,
                                                 tmp_path: Path) -> None:
    out, frames = tmp_path / "o.mp4", tmp_path / "frames"
    r = run("animate", "--source", str(astronaut_png), "--driving", str(astronaut_mp4), "--out", str(out),
            "--model", str(micro_model), "--paste-back", "--side-by-side", "--frames", str(frames),
            "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "40 frames at 25.00 fps" in r.stdout and "frames/s" in r.stdout
    info = probe_video(out)
    assert info.n_frames == 40 and (info.width, info.height) == (1024, 512)  # driver (512) | full photo (512)
    assert len(list(frames.glob("*.png"))) == 40
    # paste-back leaves the photo outside the face alone
    first, _ = read_video(out, max_frames=1)
    right = first[0][:, 512:].astype(int)
    assert np.abs(right[480:, :60] - astronaut()[480:, :60].astype(int)).mean() < 8


def test_finetune_changes_the_model_and_reloads(micro_model: Path, astronaut_png: Path, astronaut_mp4: Path,
                                                tmp_path: Path) -> None:
    person = tmp_path / "person.safetensors"
    r = run("finetune", "--source", str(astronaut_png), "--out", str(person), "--model", str(micro_model),
            "--steps", "3", "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    base, tuned = load_bundle(micro_model), load_bundle(person)
    assert tuned.kind == "person" and tuned.psi is not None and tuned.w is not None
    changed = [k for k, v in tuned.generator.state_dict().items() if not torch.equal(v, base.generator.state_dict()[k])]
    assert changed
    r = run("animate", "--source", str(astronaut_png), "--driving", str(astronaut_mp4), "--out",
            str(tmp_path / "p.mp4"), "--model", str(person), "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert probe_video(tmp_path / "p.mp4").n_frames == 40


def test_relative_motion_keeps_source_geometry() -> None:
    src = detect_landmarks(astronaut())
    # a driver with a 30 % wider jaw who opens the mouth
    driver = src.copy()
    cx = driver[:, 0].mean()
    driver[:17, 0] = cx + (driver[:17, 0] - cx) * 1.3
    driver = driver * 0.8 + np.array([40.0, 10.0], np.float32)  # other size and place in its frame
    opened = driver.copy()
    opened[[56, 57, 58, 65, 66, 67]] += np.array([0.0, 12.0], np.float32)

    def jaw_width(lmk: np.ndarray) -> float:
        return float(lmk[16, 0] - lmk[0, 0])

    def eye_width(lmk: np.ndarray) -> float:
        return float(lmk[45, 0] - lmk[36, 0])

    rel = Retargeter(src, relative=True)
    rel.set_reference(driver)
    out = rel(opened)
    assert jaw_width(out) / eye_width(out) == pytest.approx(jaw_width(src) / eye_width(src), rel=0.02)
    assert (out[66, 1] - out[62, 1]) - (src[66, 1] - src[62, 1]) > 8  # the mouth opened (12 px x scale 1/0.8)
    ab = Retargeter(src, relative=False)
    out_abs = ab(opened)
    assert jaw_width(out_abs) / eye_width(out_abs) > 1.15 * jaw_width(src) / eye_width(src)  # the driver's jaw leaks


def test_relative_motion_limits_how_far_the_head_grows() -> None:
    """A driver leaning towards the camera grows by a third; the photo's face grows by at most ``max_zoom`` (its
    hair and shoulders cannot follow a warp that holds the crop's border), its mouth still opens, and a head that
    grows less is moved exactly as before."""
    from talkinghead.faces.measures import interocular, mouth_opening

    src = detect_landmarks(astronaut())
    ref = src * 0.8 + np.array([40.0, 10.0], np.float32)
    centre = ref.mean(0)

    def leaning(factor: float) -> np.ndarray:
        out = (ref - centre) * factor + centre + np.array([5.0, -3.0], np.float32)
        out[[56, 57, 58, 65, 66, 67]] += np.array([0.0, 10.0 * factor], np.float32)  # and the mouth opens
        return out

    limited, free = Retargeter(src), Retargeter(src, max_zoom=0)
    for r in (limited, free):
        r.set_reference(ref)
    near = leaning(1.34)
    iod = float(interocular(src))
    assert float(interocular(free(near))) / iod == pytest.approx(1.34, rel=0.01)
    assert float(interocular(limited(near))) / iod == pytest.approx(1.1, rel=0.01)
    assert mouth_opening(limited(near)) > mouth_opening(src) + 0.08  # the expression is kept
    far = leaning(1 / 1.34)
    assert float(interocular(limited(far))) / iod == pytest.approx(1 / 1.1, rel=0.01)
    small = leaning(1.05)
    assert np.array_equal(limited(small), free(small))
    with pytest.raises(ValueError):
        Retargeter(src, max_zoom=0.9)


def test_relative_motion_limits_how_far_the_face_moves() -> None:
    """A driver who rises 1.5 inter-ocular distances in his frame: unlimited, the photo's face would rise as far
    (against the crop's border, which the warp holds); limited, it moves at most ``max_shift``, eased in past half
    of it, with its mouth still opening as much. A smaller move is transferred exactly as before, and a move in
    another direction is limited the same way."""
    from talkinghead.faces.measures import interocular, mouth_opening
    from talkinghead.inference.retarget import MAX_SHIFT, STABLE

    src = detect_landmarks(astronaut())
    iod = float(interocular(src))
    limited, free = Retargeter(src), Retargeter(src, max_shift=0)
    for r in (limited, free):
        r.set_reference(src)

    def moved(dx: float, dy: float) -> np.ndarray:
        out = src + np.array([dx, dy], np.float32) * iod
        out[[56, 57, 58, 65, 66, 67], 1] += 0.3 * iod  # and the mouth opens
        return out

    def shift(target: np.ndarray) -> float:  # of the points that move with the head, not with the expression
        return float(np.linalg.norm(target[STABLE].mean(0) - src[STABLE].mean(0))) / iod

    far = moved(-0.5, -1.4)
    assert shift(free(far)) == pytest.approx(np.hypot(0.5, 1.4), abs=0.05)
    assert MAX_SHIFT * 0.9 < shift(limited(far)) <= MAX_SHIFT + 1e-3
    assert mouth_opening(limited(far)) == pytest.approx(mouth_opening(free(far)), rel=0.01)
    assert shift(limited(moved(1.0, 0.0))) == pytest.approx(shift(limited(moved(0.0, 1.0))), abs=1e-3)
    assert shift(limited(moved(0.4, 0.0))) < shift(limited(moved(0.8, 0.0))) < MAX_SHIFT  # eased, not clipped
    near = moved(0.1, 0.15)
    assert np.array_equal(limited(near), free(near))
    with pytest.raises(ValueError):
        Retargeter(src, max_shift=-0.1)
    with pytest.raises(InputError):
        AnimateOptions(max_shift=-1.0)


def test_relative_motion_limits_how_far_a_face_turns() -> None:
    """A photo turned away (its image-left cheek a narrow sliver) driven by a driver who turns towards the camera:
    unlimited, that cheek would look several times as wide (a 2-D warp stretches it); limited, at most ``max_turn``
    times, turned back no further than needed, with the driver's mouth still opening as much. A turn within the
    limit, and a head that moves and tilts without turning, are transferred exactly as before."""
    from talkinghead.faces.measures import interocular, mouth_opening, turn
    from talkinghead.inference.retarget import MAX_TURN, cheek_stretch

    front = detect_landmarks(astronaut())
    assert 0.4 < float(turn(front)) < 0.6
    features = np.arange(17, 68)  # brows, nose, eyes, mouth: a turn moves them sideways against the jaw line
    iod = float(interocular(front))

    def turned(shift: float) -> np.ndarray:
        out = front.copy()
        out[features, 0] += shift * iod
        return out

    src = turned(-0.6)  # turned away: the left cheek narrow
    assert float(turn(src)) < 0.25
    limited, free = Retargeter(src), Retargeter(src, max_turn=0)
    for r in (limited, free):
        r.set_reference(front)
    drv = turned(0.7)
    drv[[56, 57, 58, 65, 66, 67], 1] += 0.3 * iod  # and the mouth opens
    assert cheek_stretch(src, free(drv)) > 2.5
    assert cheek_stretch(src, limited(drv)) == pytest.approx(MAX_TURN, abs=0.01)
    assert mouth_opening(limited(drv)) == pytest.approx(mouth_opening(free(drv)), rel=0.02)
    little = turned(0.05)
    assert cheek_stretch(src, free(little)) < MAX_TURN
    assert np.array_equal(limited(little), free(little))
    tilt = np.radians(8.0)
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]], np.float32)
    moved = (front - front.mean(0)) @ rot.T + front.mean(0) + np.array([12.0, -6.0], np.float32)
    assert np.array_equal(limited(moved), free(moved))
    with pytest.raises(ValueError):
        Retargeter(src, max_turn=0.9)
    with pytest.raises(InputError):
        AnimateOptions(max_turn=0.5)


def test_a_driving_video_is_tracked_without_the_causal_filters_lag(astronaut_frames, astronaut_mp4: Path) -> None:
    """A driving file's landmarks are smoothed centred on each frame (read a few frames ahead), not by the causal
    One-Euro filter, which trails a moving head (and the lips) by a frame or more."""
    from talkinghead.data.examples import apply_affine

    truth = np.stack([apply_affine(detect_landmarks(astronaut()), m) for m in astronaut_frames[1]])

    def error(centred: float) -> float:
        drv = Animator._drive_video(astronaut_mp4, 1.0, 0, centred)
        got = np.stack([lmk for lmk, _ in drv.items])
        for close in drv.closers:
            close()
        assert got.shape == truth.shape  # every frame, in order
        return float(np.linalg.norm(got - truth, axis=2).mean())

    centred, causal = error(1.0), error(0.0)
    assert centred < 1.0 < causal
    assert centred < 0.5 * causal
    with pytest.raises(InputError):
        AnimateOptions(track_smoothing=-1.0)


def test_reference_is_the_driving_frame_most_like_the_source(micro_warp_model: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver that starts mid-word (mouth open) still opens and closes a closed-mouth photo's mouth."""
    src = detect_landmarks(astronaut())
    rot = np.array([[np.cos(0.1), -np.sin(0.1)], [np.sin(0.1), np.cos(0.1)]], np.float32)
    neutral = (src - src.mean(0)) @ rot.T * 0.8 + np.array([300.0, 200.0], np.float32)  # other size, place, roll
    opened = neutral.copy()
    opened[[56, 57, 58, 65, 66, 67]] += np.array([0.0, 12.0], np.float32)
    track = [opened, opened, None, neutral, opened, neutral]
    assert reference_index(track, src) == 3
    assert reference_index([None, None], src) is None

    def gap(lmk: np.ndarray) -> float:  # inner lips apart, in pixels
        return float(lmk[66, 1] - lmk[62, 1])

    anim = Animator(micro_warp_model, device="cpu")
    crop = anim.set_source([astronaut()], progress=False)[0].landmarks
    k = np.linalg.norm(crop[45] - crop[36]) / np.linalg.norm(src[45] - src[36])  # photo → crop pixels
    seen: list[np.ndarray] = []
    for name in ("render", "render_layers"):  # the micro model renders 64²: its faces are composed at 256²
        method = getattr(anim, name)
        monkeypatch.setattr(anim, name, lambda targets, method=method: (seen.extend(targets), method(targets))[1])
    lmks = np.stack([np.full((68, 2), np.nan, np.float32) if t is None else t for t in track])
    for reference, closed_gap in (("auto", 0.0), ("first", -15.0 * k)):
        seen.clear()
        anim.animate((lmks, 25.0), tmp_path / f"{reference}.mp4", AnimateOptions(reference=reference, progress=False))
        gaps = [gap(t) - gap(crop) for t in seen]
        assert len(gaps) == 6
        # the open frames open the photo's mouth (12 px / 0.8, in crop pixels) and the closed ones close it again, as in the driver
        # ("first" subtracts the open mouth of frame 0: open frames stay shut, closed ones press the lips together)
        assert gaps[3] == pytest.approx(closed_gap, abs=0.5) and gaps[5] == pytest.approx(closed_gap, abs=0.5)
        assert gaps[0] == pytest.approx(closed_gap + 15.0 * k, abs=0.5) and 15.0 * k > 4
    with pytest.raises(InputError, match="reference"):
        AnimateOptions(reference="middle")


def test_reference_is_never_a_blink() -> None:
    """A driving frame in a blink is not taken as the reference even when it is otherwise the most like the photo:
    from it, the driver's open eyes would widen the photo's and its blinks would cancel out."""
    src = detect_landmarks(astronaut())
    blink = src.copy()
    blink[[37, 38, 43, 44]] += np.array([0.0, 3.0], np.float32)  # upper lids down,
    blink[[40, 41, 46, 47]] -= np.array([0.0, 3.0], np.float32)  # lower lids up: the eyes close
    talking = src.copy()
    talking[[56, 57, 58, 65, 66, 67]] += np.array([0.0, 12.0], np.float32)  # mouth open: less like the photo
    assert reference_distance(blink, src) < reference_distance(talking, src)
    assert eye_opening(blink) < 0.75 * eye_opening(talking)
    assert reference_index([blink, talking, talking], src) == 1
    assert reference_index([blink, None], src) == 0  # only a blink: it is still the reference


def test_live_stream_settles_on_a_reference_that_is_not_a_blink(micro_warp_model: Path) -> None:
    """A stream read frame by frame (``live``) starts from its first frame; after SETTLE_FRAMES frames with a face
    the reference is chosen among them, so a first frame in a blink does not stop the output from blinking."""
    from talkinghead.inference.animate import SETTLE_FRAMES, FrameStep

    anim = Animator(micro_warp_model, device="cpu")
    src = anim.set_source([astronaut()], progress=False)[0].landmarks
    driver = (src - src.mean(0)) * 0.8 + np.array([300.0, 200.0], np.float32)  # another size and place
    blink = driver.copy()
    blink[[37, 38, 43, 44]] += np.array([0.0, 2.5], np.float32)
    blink[[40, 41, 46, 47]] -= np.array([0.0, 2.5], np.float32)
    step = FrameStep(anim, AnimateOptions(progress=False))
    first = step.target(blink, None)
    assert eye_opening(first) == pytest.approx(eye_opening(src), abs=1e-3)  # the blink is the reference for now
    for _ in range(SETTLE_FRAMES - 1):
        step.target(driver, None)
    assert step.settle is None and np.allclose(step.retarget.reference, driver)
    assert eye_opening(step.target(blink, None)) < 0.5 * eye_opening(src)  # now the driver's blink closes her eyes
    fixed = FrameStep(anim, AnimateOptions(progress=False, reference="first"))
    for lmk in [blink] + [driver] * SETTLE_FRAMES:
        fixed.target(lmk, None)
    assert np.allclose(fixed.retarget.reference, blink)  # "first" keeps the first frame


def test_no_face_source_exit_2(micro_model: Path, astronaut_mp4: Path, faceless_frames, tmp_path: Path) -> None:
    wall = write_image(tmp_path / "wall.png", faceless_frames[0])
    r = run("animate", "--source", str(wall), "--driving", str(astronaut_mp4), "--out", str(tmp_path / "o.mp4"),
            "--model", str(micro_model), "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no face" in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_sideways_inputs_are_named(micro_model: Path, astronaut_png: Path, astronaut_frames, tmp_path: Path) -> None:
    """A photo or a video stored sideways without saying so in the file: no face is upright, and the one line
    says which turn shows one (instead of only "no face found")."""
    sideways = write_image(tmp_path / "sideways.png", np.rot90(astronaut_frames[0][0]))  # turned 90° anticlockwise
    r = run("animate", "--source", str(sideways), "--driving", str(astronaut_png), "--out", str(tmp_path / "o.mp4"),
            "--model", str(micro_model), "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no upright face" in r.stderr and "turned 90° clockwise" in r.stderr, r.stderr
    driving = write_frames(tmp_path / "d.mp4", [np.ascontiguousarray(np.rot90(f, 2)) for f in astronaut_frames[0][:8]])
    r = run("animate", "--source", str(astronaut_png), "--driving", str(driving), "--out", str(tmp_path / "o.mp4"),
            "--model", str(micro_model), "--device", "cpu", "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no face found in any of the 8 driving frames" in r.stderr and "upside down" in r.stderr, r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_driving_with_faceless_stretch(micro_model: Path, astronaut_png: Path, astronaut_frames, faceless_frames,
                                       tmp_path: Path) -> None:
    frames = list(astronaut_frames[0][:15]) + [np.resize(f, (320, 320, 3)) for f in faceless_frames[:10]] + \
        list(astronaut_frames[0][15:30])
    driving = write_frames(tmp_path / "d.mp4", frames)
    r = run("animate", "--source", str(astronaut_png), "--driving", str(driving), "--out", str(tmp_path / "o.mp4"),
            "--model", str(micro_model), "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "40 frames" in r.stdout and "10 without a driving face" in r.stdout
    assert probe_video(tmp_path / "o.mp4").n_frames == 40


def test_unwritable_out_fails_before_any_compute(astronaut_png: Path, astronaut_mp4: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    t0 = time.perf_counter()
    r = run("animate", "--source", str(astronaut_png), "--driving", str(astronaut_mp4), "--out",
            str(blocker / "o.mp4"), "--model", str(tmp_path / "no-such-model.safetensors"))
    assert r.returncode == 2 and "cannot write" in r.stderr and r.stderr.count("\n") == 1
    assert time.perf_counter() - t0 < 20


@pytest.mark.parametrize("model", ["micro_model", "micro_warp_model"])
def test_onnx_backend_matches_torch(model: str, astronaut_png: Path, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(model)
    t, o = Animator(path, device="cpu"), Animator(path, backend="onnx")
    faces = t.set_source([astronaut_png])
    o.set_source([astronaut_png])
    assert np.abs(t.psi - o.psi).max() < 1e-3
    rng = np.random.default_rng(0)
    targets = np.stack([faces[0].landmarks + rng.normal(0, 2.0, (68, 2)).astype(np.float32) for _ in range(3)])
    a, b = t.render(targets).astype(int), o.render(targets).astype(int)
    assert a.shape == b.shape == (3, t.resolution, t.resolution, 3)
    assert np.abs(a - b).max() <= 1


def test_outputs_are_marked_and_verify_exit_codes(micro_model: Path, astronaut_png: Path, astronaut_mp4: Path,
                                                  tmp_path: Path) -> None:
    marked, plain = tmp_path / "marked.mp4", tmp_path / "plain.mp4"
    for out, extra in ((marked, []), (plain, ["--no-watermark", "--no-credentials"])):
        r = run("animate", "--source", str(astronaut_png), "--driving", str(astronaut_mp4), "--out", str(out),
                "--model", str(micro_model), "--device", "cpu", "--no-progress", *extra)
        assert r.returncode == 0, r.stderr
    r = run("verify", str(marked))
    assert r.returncode == 0 and "SYNTHETIC" in r.stdout and "talkinghead" in r.stdout
    r = run("verify", str(plain))
    assert r.returncode == 1 and "not marked" in r.stdout
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    r = run("verify", str(marked), str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    # a folder is its images and videos: two marked frames saved as PNG, and a folder with none
    from talkinghead.io import read_video, write_image

    frames = tmp_path / "frames"
    for i, f in enumerate(read_video(marked, max_frames=2)[0]):
        write_image(frames / f"{i:06d}.png", f)
    (frames / "notes.txt").write_text("not a frame")
    r = run("verify", str(frames))
    assert r.returncode == 0 and r.stdout.count("SYNTHETIC") == 2, r.stdout + r.stderr
    (tmp_path / "empty").mkdir()
    r = run("verify", str(tmp_path / "empty"))
    assert r.returncode == 2 and "no image or video" in r.stderr


def test_demo_driving_track_has_no_cut() -> None:
    """The bundled demo motion joins two clips; a jump between them showed as a visible cut in ``make demo``
    (the first version jumped 31.8 px between frames 74 and 75; real motion moves under 3 px per frame)."""
    from talkinghead.assets import driving_motion

    lmk, fps = driving_motion()
    assert lmk.shape == (150, 68, 2) and fps == 25.0
    assert np.isfinite(lmk).all()
    assert float(np.abs(np.diff(lmk, axis=0)).max()) < 3.0


def test_onnx_cache_key_follows_the_config_not_only_the_weights(micro_warp_model: Path) -> None:
    """Fixed rules such as ``model.border_flow`` are in the graph but not in the weights: a cached export made
    before such a rule changed must not be reused."""
    from dataclasses import replace

    from talkinghead.inference.backends import _tag
    from talkinghead.models.bundle import load_model

    bundle = load_model(micro_warp_model)
    gen = bundle.generator
    assert _tag(gen, config=bundle.config) == _tag(gen, config=replace(bundle.config))
    assert _tag(gen, config=bundle.config) != _tag(gen, config=replace(bundle.config, border_flow=0.0))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_faces_are_composed_at_the_output_size_from_the_photos_own_pixels(micro_warp_model: Path,
                                                                         tmp_path: Path) -> None:
    """The warp generator's faces, composed again from their layers (``full_resolution``): at the model's size they
    are its own output (one source and two); at a larger output size the photo's detail survives, where upscaling
    the model's crop loses it."""
    import cv2

    from talkinghead.faces.crop import crop_image
    from talkinghead.inference.compose import compose_layers

    anim = Animator(micro_warp_model, device="cpu")
    res = anim.resolution  # 32
    photo = astronaut()
    h, w = photo.shape[:2]  # a second photo of the same scene: the first moved a little (another scene is left out)
    moved = cv2.warpAffine(photo, np.float32([[1.03, 0, -6], [0, 1.03, 4]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    for photos in ([photo], [photo, moved]):
        faces = anim.set_source(photos, progress=False)
        targets = np.stack([faces[0].landmarks + [3.0 * i, -2.0 * i] for i in range(3)]).astype(np.float32)
        layers = anim.render_layers(targets)
        assert layers.sources.shape == (3, len(photos))
        small = [cv2.resize(f.crop, (res, res), interpolation=cv2.INTER_AREA) for f in faces]
        again = np.stack(compose_layers(layers, small))
        assert np.abs(again.astype(int) - anim.render(targets).astype(int)).max() <= 3
    faces = anim.set_source([photo], progress=False)
    truth = crop_image(photo, faces[0].box, 256)
    still = np.repeat(detect_landmarks(photo)[None], 4, axis=0)  # a driver that does not move
    frames = {}
    for full in (True, False):
        d = tmp_path / f"full{int(full)}"
        anim.animate((still, 25.0), tmp_path / f"{full}.mp4", AnimateOptions(
            full_resolution=full, frames_dir=d, watermark=False, credentials=False, progress=False))
        frames[full] = [cv2.imread(str(p))[:, :, ::-1] for p in sorted(d.glob("*.png"))]
    assert len(frames[True]) == len(frames[False]) == 4 and frames[True][0].shape == (256, 256, 3)

    def detail(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())

    full, upscaled = frames[True][-1], frames[False][-1]
    assert _psnr(full, truth) > _psnr(upscaled, truth) + 3.0
    assert detail(full) > 0.5 * detail(truth) > detail(upscaled)
