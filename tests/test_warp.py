"""The warp-and-refine generator: landmark flow, its start at the thin-plate warp, training, fine-tuning, animation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from talkinghead.api import train_config
from talkinghead.config import ModelConfig
from talkinghead.data.dataset import PreparedDataset
from talkinghead.data.episodes import WarpEpisodeDataset
from talkinghead.data.examples import astronaut
from talkinghead.errors import InputError
from talkinghead.faces.crop import face_crop_box, to_crop_coords
from talkinghead.faces.landmarks import detect_landmarks
from talkinghead.faces.measures import eye_centres
from talkinghead.faces.sketch import feature_region, visible_features
from talkinghead.faces.warp import HEAD_GIVE, head_points, identity_grid, tps_grid, warp_image
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.inference.source import load_sources
from talkinghead.io import probe_video, read_video
from talkinghead.models.bundle import load_bundle
from talkinghead.models.inputs import generation_regions, model_crops, to_input
from talkinghead.models.warp_generator import WarpGenerator
from talkinghead.training.finetune import finetune, warp_episodes
from talkinghead.training.metalearn import MetaLearner, _collate, train
from tests.conftest import MICRO_WARP, write_frames


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "talkinghead", *args], capture_output=True, text=True, timeout=600)


def _dots(points: np.ndarray, size: int = 256) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        img[y - 1 : y + 2, x - 1 : x + 2] = 255
    return img


def test_tps_flow_moves_source_landmarks_onto_the_target() -> None:
    src = detect_landmarks(astronaut())
    src = (src - src.mean(0)) * (120 / np.ptp(src[:, 0])) + 128  # a face in a 256² crop
    tgt = src.copy()
    tgt[48:68, 1] += np.linspace(0, 6, 20)  # the mouth moves down
    tgt += np.array([5.0, -3.0], np.float32)  # and the head a little
    warped = warp_image(_dots(src), tps_grid(tgt, src, 256, 256))
    hits = [warped[int(round(y)), int(round(x))].mean() > 100 for x, y in tgt]
    assert np.mean(hits) > 0.9
    # the frame's border does not move; the same landmarks give (almost) no motion
    g = tps_grid(tgt, src, 256, 64)
    ident = identity_grid(64)
    border = max(float(np.abs(g[0] - ident[0]).max()), float(np.abs(g[:, -1] - ident[:, -1]).max()))
    assert border * 128 < 0.5  # under half a pixel of the 256² frame
    assert np.abs(tps_grid(src, src, 256, 64) - ident).max() < 1e-3
    assert np.array_equal(tps_grid(np.full((68, 2), np.nan), src, 256, 32), identity_grid(32))


def test_head_points_move_the_hair_with_a_head_that_moves_down() -> None:
    src = detect_landmarks(astronaut())
    src = (src - src.mean(0)) * (120 / np.ptp(src[:, 0])) + 128  # a face in a 256² crop
    left, right = eye_centres(src)
    iod = float(np.linalg.norm(right - left))
    tgt = src + np.array([0.0, 20.0], np.float32)  # the whole head moves down 20 px

    def moved(head: float, above: float) -> np.ndarray:
        """How far the content at ``above`` inter-ocular distances over the (moved) eyes came down."""
        g = tps_grid(tgt, src, 256, 256, head=head)
        at = (left + right) / 2 + np.array([0.0, 20.0 - above * iod])
        x, y = np.round(at).astype(int)
        return at - ((g[y, x] + 1.0) * 128 - 0.5)

    for above in (0.8, 1.0, 1.2):  # the forehead above the brows, the hairline, the crown
        assert abs(moved(1.2, above)[1] - 20.0) < 3.0, above
    assert moved(0.0, 1.2)[1] < 14.0  # without them the crown is held back: the forehead grows
    ident = identity_grid(64)
    assert np.abs(tps_grid(src, src, 256, 64, head=1.2) - ident).max() < 1e-6  # no motion, no flow
    high = src - np.array([0.0, 20.0], np.float32)  # a head near the top of the frame moves up 20 px more
    up_t, up_s = head_points(high - np.array([0.0, 20.0], np.float32), high, 256, 1.2)
    assert 0 < len(up_s) < 3  # the top point would be too near the border: left out
    assert up_s[:, 1].min() >= 0.06 * 256  # the others stop short of it: squeezed by at most HEAD_GIVE
    assert (up_t[:, 1] >= (1.0 - HEAD_GIVE) * up_s[:, 1] - 1e-3).all() and (up_t[:, 1] < up_s[:, 1] - 1.0).all()

    def border(t: np.ndarray, s_: np.ndarray, head: float) -> float:
        g = tps_grid(t, s_, 256, 64, head=head)
        return 128 * max(float(np.abs(g[0] - ident[0]).max()), float(np.abs(g[:, -1] - ident[:, -1]).max()))

    for t, s_ in ((tgt, src), (high - np.array([0.0, 20.0], np.float32), high)):
        assert border(t, s_, 1.2) < max(1.5, border(t, s_, 0.0) + 0.5)  # the frame's border stays (in pixels)


def test_untrained_generator_starts_at_the_warp() -> None:
    torch.manual_seed(0)
    cfg = train_config("warp", **MICRO_WARP).model
    gen = WarpGenerator(cfg).eval()
    rng = np.random.default_rng(0)
    src = rng.uniform(8, 24, (68, 2)).astype(np.float32)
    tgt = src + rng.normal(0, 1.0, (68, 2)).astype(np.float32)
    image = torch.rand(1, 1, 3, 32, 32) * 2 - 1
    prior = torch.from_numpy(tps_grid(tgt, src, 32, 16).transpose(2, 0, 1))[None, None]
    sketch = torch.zeros(1, 3, 16, 16)
    feats = [f[None] for f in gen.encode(image[0], torch.zeros(1, 3, 32, 32))]
    with torch.no_grad():
        out, aux = gen(image, feats, prior, sketch, torch.zeros(1, gen.psi_dim))
    grid = torch.nn.functional.interpolate(prior[0], size=(32, 32), mode="bilinear").permute(0, 2, 3, 1)
    warped = torch.nn.functional.grid_sample(image[0], grid, padding_mode="border", align_corners=False)
    assert float(aux["flow_delta"].abs().max()) == 0.0
    assert float(aux["blend"][:, 0].mean()) > 0.9  # trusts the warped source
    assert float((out - warped).abs().mean()) < 0.1
    # two sources: confidences start equal, output shape holds
    out2, _ = gen(image.expand(1, 2, -1, -1, -1), [f.expand(1, 2, -1, -1, -1) for f in feats],
                  prior.expand(1, 2, -1, -1, -1), sketch, torch.zeros(1, gen.psi_dim))
    assert torch.allclose(out2, out, atol=1e-5)


def test_warp_episodes_and_losses_fall(tiny_dataset: Path) -> None:
    cfg = train_config("warp", **MICRO_WARP, **{"optim.lr_g": 2e-3, "optim.lr_d": 2e-3})
    data = PreparedDataset(tiny_dataset, split="train")
    eps = WarpEpisodeDataset(data, 32, k=2, flip=False, motion_resolution=16)
    item = eps[1]
    assert item["frames"].shape == (2, 3, 32, 32) and item["prior"].shape == (2, 2, 16, 16)
    assert item["target_sketch"].shape == (3, 16, 16)
    assert float(item["prior"].abs().max()) <= 1.5
    batch = _collate([eps[i] for i in range(2)])
    learner = MetaLearner(cfg, len(eps.keys), torch.device("cpu"))
    assert not learner.adversarial_on(0) and learner.adversarial_on(1)
    first = learner.step(batch, 0)[0]
    assert "adversarial" not in first and "d_hinge" not in first  # reconstruction only before adversarial_from
    # the tracks are smoothed centred (prepare's default), so the thin-plate prior already leaves less to learn than
    # it did with the lagging One-Euro tracks (first L1 0.058 against 0.070): more steps, the last few averaged
    history = [learner.step(batch, i)[0] for i in range(1, 28)]
    assert "d_hinge" in history[0] and "match" in history[0]
    last = float(np.mean([h["l1"] for h in history[-4:]]))
    assert last < 0.8 * first["l1"], (first, history[-4:])


def test_feature_region_covers_eyes_and_mouth_only() -> None:
    lmk = detect_landmarks(astronaut())
    mask = feature_region(lmk, astronaut().shape[0])
    for a, b in ((36, 42), (42, 48), (48, 68)):  # every eye and lip point lies inside
        assert all(mask[int(round(y)), int(round(x))] == 1 for x, y in lmk[a:b])
    for i in (0, 8, 16, 27, 30):  # jaw, chin and nose do not
        x, y = np.round(lmk[i]).astype(int)
        assert mask[y, x] == 0
    assert 0.005 < mask.mean() < 0.1
    assert feature_region(np.full((68, 2), np.nan), 16).min() == 1.0


def test_visible_features_are_the_lips_and_the_eyes_open_in_both() -> None:
    """The region where ``gen_visible`` keeps the generated pixels off: the lip flesh, never the gap between the
    lips (an open mouth's interior must be painted), and an eye only while it is not blinking against the sources."""
    from talkinghead.losses.blend import generated_inside

    lmk = detect_landmarks(astronaut())
    size = astronaut().shape[0]

    def at(mask: np.ndarray, p: np.ndarray) -> float:
        return float(mask[int(round(p[1])), int(round(p[0]))])

    opened = lmk.copy()  # the lower lip and jaw moved down: a gap between the inner lips
    opened[[56, 57, 58, 65, 66, 67]] += [0.0, 0.15 * (lmk[42:48].mean(0) - lmk[36:42].mean(0))[0]]
    mask = visible_features(opened, lmk[None], size)
    gap = (opened[62] + opened[66]) / 2
    assert at(mask, gap) == 0.0
    assert at(mask, (opened[50] + opened[61]) / 2) == 1.0  # upper lip
    assert at(mask, (opened[57] + opened[66]) / 2) == 1.0  # lower lip
    assert at(mask, lmk[36:42].mean(0)) == 1.0 and at(mask, lmk[42:48].mean(0)) == 1.0
    for i in (8, 30, 19):  # chin, nose tip, brow
        assert at(mask, opened[i]) == 0.0
    blink = lmk.copy()  # the right eye (36-41) closed: its lids meet
    blink[[37, 38]], blink[[41, 40]] = (lmk[[37, 38]] + lmk[[41, 40]]) / 2, (lmk[[37, 38]] + lmk[[41, 40]]) / 2
    closed = visible_features(blink, lmk[None], size)
    assert at(closed, lmk[36:42].mean(0)) == 0.0 and at(closed, lmk[42:48].mean(0)) == 1.0
    assert visible_features(np.full((68, 2), np.nan), lmk[None], 16).max() == 0.0

    visible = torch.from_numpy(mask)[None, None]
    blend = torch.zeros(1, 3, size, size)
    blend[:, 0] = 1.0
    assert float(generated_inside(blend, visible)) == 0.0
    blend[:, 2] = visible[:, 0] * 0.5  # half generated on the region, nothing elsewhere
    assert float(generated_inside(blend, visible)) == pytest.approx(0.5)
    blend[:, 2] = 1.0 - visible[:, 0]  # generated everywhere else: not counted
    assert float(generated_inside(blend, visible)) == 0.0


def test_generation_region_stops_below_the_brows() -> None:
    """At inference the generated pixels may be used on the eyes and the mouth, not on the brows (where the decoder,
    never trained there, drew them blue-grey when a target moved them far from the photo's)."""
    cfg = ModelConfig()
    lmk = detect_landmarks(astronaut())
    crop = to_crop_coords(lmk, face_crop_box(lmk), 256)

    def at(region: np.ndarray, points: np.ndarray) -> np.ndarray:  # region values at 256² points, region at 64²
        ij = np.round((points + 0.5) * 64 / 256 - 0.5).astype(int)
        return region[ij[:, 1], ij[:, 0]]

    eyes_mouth = np.stack([crop[36:42].mean(0), crop[42:48].mean(0), crop[48:60].mean(0)])
    region = generation_regions(crop[None], 256, 64, cfg.gen_region, cfg.gen_region_eyes)[0, 0]
    assert at(region, eyes_mouth).min() == pytest.approx(1.0, abs=0.01)
    assert at(region, crop[17:27]).mean() < 0.2
    as_the_mouth = generation_regions(crop[None], 256, 64, cfg.gen_region)[0, 0]  # eyes grown as far as the mouth
    assert at(as_the_mouth, crop[17:27]).mean() > 0.8


def test_generation_region_leaves_what_the_sources_show() -> None:
    """``model.gen_keep_visible``: only what the sources cannot show is left to the generated pixels, the gap of an
    opened mouth and a blinking eye; the lips, the skin around them and the eyes open as in the sources are not."""
    cfg = ModelConfig()
    lmk = detect_landmarks(astronaut())
    crop = to_crop_coords(lmk, face_crop_box(lmk), 256)
    iod = float(np.linalg.norm(crop[42:48].mean(0) - crop[36:42].mean(0)))

    def at(region: np.ndarray, points: np.ndarray) -> np.ndarray:  # region values at 256² points, region at 64²
        ij = np.round((np.atleast_2d(points) + 0.5) * 64 / 256 - 0.5).astype(int)
        return region[ij[:, 1], ij[:, 0]]

    target = crop.copy()  # mouth opened by 0.3 inter-ocular distances, right eye (36-41) closed
    target[[5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67]] += [0.0, 0.3 * iod]
    target[[37, 38]] = target[[41, 40]] = (crop[[37, 38]] + crop[[41, 40]]) / 2
    plain = generation_regions(target[None], 256, 64, cfg.gen_region, cfg.gen_region_eyes)[0, 0]
    kept = generation_regions(target[None], 256, 64, cfg.gen_region, cfg.gen_region_eyes, crop[None])[0, 0]
    upper, lower = (target[51] + target[62]) / 2, (target[57] + target[66]) / 2
    gap, shut, open_eye = (target[62] + target[66]) / 2, target[36:42].mean(0), target[42:48].mean(0)
    assert at(plain, np.stack([upper, lower, gap, shut, open_eye])).min() == pytest.approx(1.0, abs=0.01)
    below = target[57] + [0.0, 0.2 * iod]  # the skin under the lower lip
    assert at(plain, below)[0] > 0.9
    assert at(kept, np.stack([upper, lower])).max() < 0.3 and at(kept, np.stack([open_eye, below])).max() < 0.05
    assert at(kept, gap)[0] > 0.7 and at(kept, shut)[0] > 0.9
    assert kept.sum() < 0.7 * plain.sum()
    closed = crop.copy()  # her own shape with the lips closed: almost nothing the source does not show
    closed[[61, 62, 63]] = closed[[67, 66, 65]] = (crop[[61, 62, 63]] + crop[[67, 66, 65]]) / 2
    same = generation_regions(closed[None], 256, 64, cfg.gen_region, cfg.gen_region_eyes, closed[None])[0, 0]
    assert same.sum() < 0.05 * plain.sum(), (same.sum(), plain.sum())


def _blend_step(batch: dict[str, torch.Tensor], videos: int, term: str,
                weight: float) -> tuple[dict[str, float], torch.Tensor]:
    """One generator step of the micro warp model with the loss ``term`` at ``weight``, from a blend that gives the
    generated pixels half the weight: (losses, d loss / d generated-blend logit)."""
    cfg = train_config("warp", **{**MICRO_WARP, term: weight, "adversarial_from": 100})
    learner = MetaLearner(cfg, videos, torch.device("cpu"))
    with torch.no_grad():
        learner.generator.out.bias.view(6, 4)[5] = 3.0
    losses = learner.step(batch, 0)[0]
    return losses, learner.generator.out.bias.grad.view(6, 4)[5].sum()


def test_gen_outside_loss_pulls_generated_weight_back_to_the_source(tiny_dataset: Path) -> None:
    data = PreparedDataset(tiny_dataset, split="train")
    eps = WarpEpisodeDataset(data, 32, k=2, flip=False, motion_resolution=16)
    batch = _collate([eps[i] for i in range(2)])
    assert batch["region"].shape == (2, 1, 16, 16) and 0 < float(batch["region"].mean()) < 0.5

    (free, g_free), (held, g_held) = (_blend_step(batch, len(eps.keys), "loss.gen_outside", w) for w in (0.0, 10.0))
    assert free["gen_outside"] > 0.3  # logged without being trained on
    assert held["g_total"] == pytest.approx(free["g_total"] + 10.0 * free["gen_outside"], rel=1e-4)
    assert float(g_held - g_free) > 1.0  # the term pushes the generated pixels' weight down


def test_gen_visible_loss_keeps_generated_pixels_off_the_lips_and_eyes(tiny_dataset: Path) -> None:
    from talkinghead.training.metalearn import make_episodes

    data = PreparedDataset(tiny_dataset, split="train")
    cfg0 = train_config("warp", **{**MICRO_WARP, "adversarial_from": 100})
    assert "visible" not in make_episodes(cfg0, data, 0, False, True)[0]  # only built when the term is on
    eps = make_episodes(train_config("warp", **{**MICRO_WARP, "loss.gen_visible": 1.0}), data, 0, False, True)
    batch = _collate([eps[i] for i in range(2)])
    assert batch["visible"].shape == (2, 1, 32, 32) and 0 < float(batch["visible"].mean()) < 0.2

    (free, g_free), (held, g_held) = (_blend_step(batch, len(eps.keys), "loss.gen_visible", w) for w in (0.0, 10.0))
    assert free["gen_visible"] > 0.3
    assert held["g_total"] == pytest.approx(free["g_total"] + 10.0 * free["gen_visible"], rel=1e-4)
    assert float(g_held - g_free) > 0.5  # the term pushes the generated pixels' weight down


def test_colour_jitter_recolours_sources_and_target_alike(tiny_dataset: Path) -> None:
    from talkinghead.data.episodes import jitter_colours

    img = astronaut()[:96, :96]
    out = jitter_colours(np.stack([img, img[::-1], img]), np.random.default_rng(3))
    assert out.dtype == np.uint8 and out.shape == (3, 96, 96, 3)
    assert np.array_equal(out[0], out[2]) and np.abs(out[0].astype(int) - img).mean() > 5

    data = PreparedDataset(tiny_dataset, split="train")
    plain = WarpEpisodeDataset(data, 32, k=2, flip=False, motion_resolution=16)[0]
    jittered = WarpEpisodeDataset(data, 32, k=2, flip=False, motion_resolution=16, colour_jitter=1.0)[0]
    x = torch.cat([plain["frames"], plain["target"][None]]).permute(0, 2, 3, 1).reshape(3, -1, 3).double()
    y = torch.cat([jittered["frames"], jittered["target"][None]]).permute(0, 2, 3, 1).reshape(3, -1, 3).double()
    assert float((x - y).abs().mean()) > 0.05  # the same frames, recoloured

    def fit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # a colour map quadratic in each channel, least squares
        a1 = torch.cat([a, a**2, torch.ones_like(a[:, :1])], 1)
        return torch.linalg.lstsq(a1, b).solution

    def residual(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> float:
        return float((torch.cat([a, a**2, torch.ones_like(a[:, :1])], 1) @ m - b).abs().mean())

    m = fit(x[:2].reshape(-1, 3), y[:2].reshape(-1, 3))  # learnt on the two sources
    on_sources, on_target = residual(x[:2].reshape(-1, 3), y[:2].reshape(-1, 3), m), residual(x[2], y[2], m)
    assert on_target < 2 * on_sources + 0.01, (on_sources, on_target)  # the target was recoloured the same way
    assert on_target < 0.2 * float((x[2] - y[2]).abs().mean())


def test_open_mouth_episodes_pair_closed_sources_with_an_open_target(tiny_dataset: Path) -> None:
    from talkinghead.data.episodes import _mouth_pools, resize_frames, to_tensor
    from talkinghead.faces.measures import mouth_opening

    base = detect_landmarks(astronaut()).astype(np.float32)
    gaps = np.array([0.0, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.3, 0.25])
    iod = float(np.linalg.norm(base[36:42].mean(0) - base[42:48].mean(0)))
    lmk = np.repeat(base[None], len(gaps), 0)
    lmk[:, 65:68, 1] += (gaps * iod)[:, None]  # the lower inner lip drops: the mouth opens by `gaps`

    class FakeClip:
        def __init__(self, landmarks: np.ndarray) -> None:
            self.landmarks = landmarks

        def arrays(self) -> dict[str, np.ndarray]:
            return {"landmarks": self.landmarks}

    opening = mouth_opening(lmk)
    closed, opened = _mouth_pools(FakeClip(lmk))  # type: ignore[arg-type,misc]
    assert opening[closed].max() < opening[opened].min() - 0.1
    assert {7, 8} <= set(opened) <= {6, 7, 8, 9} and {0, 1} <= set(closed) <= {0, 1, 2, 3, 4}
    assert _mouth_pools(FakeClip(np.repeat(base[None], 10, 0))) is None  # type: ignore[arg-type]  # never opens

    data = PreparedDataset(tiny_dataset, split="train")
    eps = WarpEpisodeDataset(data, 32, k=2, flip=False, motion_resolution=16, open_mouth=1.0)
    assert len(eps.mouth_pools) == len(eps.clips)
    assert eps.episode(0, np.random.default_rng(0))["frames"].shape == (2, 3, 32, 32)  # no pool: a usual episode
    eps.mouth_pools[0] = (np.array([0, 1]), np.array([5]))
    frames, lmk0 = eps.clips[0].read(list(range(6)))
    want = to_tensor(resize_frames(frames, lmk0, 32)[0])
    for seed in range(4):
        item = eps.episode(0, np.random.default_rng(seed))
        assert torch.equal(item["target"], want[5])
        assert all(any(torch.equal(f, want[i]) for i in (0, 1)) for f in item["frames"])


def test_region_l1_counts_only_the_region() -> None:
    from talkinghead.losses.blend import region_l1

    real = torch.zeros(1, 3, 32, 32)
    region = torch.zeros(1, 1, 16, 16)
    region[..., 4:8, 4:8] = 1.0
    fake = real.clone()
    fake[..., 24:, 24:] = 1.0  # wrong only outside the region
    assert float(region_l1(fake, real, region)) == 0.0
    fake[..., 8:16, 8:16] = 0.5  # wrong by 0.5 all over it
    assert 0.4 < float(region_l1(fake, real, region)) <= 0.5


def test_ssim_loss_is_the_evaluation_ssim() -> None:
    """The loss's SSIM is the evaluation's (skimage's) on a real photo and a blurred, shifted copy; its gradient
    asks for the lost contrast back."""
    import cv2

    from talkinghead.evaluation.metrics import ssim
    from talkinghead.losses.structure import ssim_loss

    photo = cv2.resize(astronaut(), (96, 96), interpolation=cv2.INTER_AREA)
    other = np.roll(cv2.GaussianBlur(photo, (5, 5), 1.5), 2, axis=1)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(to_input(x[None]))

    assert abs(float(1.0 - ssim_loss(t(other), t(photo))) - ssim(other, photo)) < 1e-4
    assert float(ssim_loss(t(photo), t(photo))) < 1e-6
    blurred = t(cv2.GaussianBlur(photo, (7, 7), 2.0)).requires_grad_(True)
    ssim_loss(blurred, t(photo)).backward()
    step = (blurred - 0.5 * blurred.grad / blurred.grad.abs().max()).detach()
    assert float(ssim_loss(step, t(photo))) < float(ssim_loss(blurred.detach(), t(photo)))


def test_train_cli_warp_preset_resumes(tiny_dataset: Path, tmp_path: Path) -> None:
    over = {**MICRO_WARP, "steps": 2, "checkpoint_every": 1}
    train(train_config("warp", **{**over, "steps": 1}), tiny_dataset, tmp_path / "run", progress=False)
    res = train(train_config("warp", **over), tiny_dataset, tmp_path / "run", resume=True, progress=False)
    assert res.steps_done == 1 and res.last_step == 2
    bundle = load_bundle_from_run(tmp_path / "run")
    assert bundle.config.arch == "warp"
    # a checkpoint kept without its optimizer state (as committed in checkpoints/) still resumes
    for ckpt in (tmp_path / "run" / "checkpoints").iterdir():
        (ckpt / "optim.safetensors").unlink()
        # a checkpoint's own model file (its header holds the run's config) loads as its checkpoint does
        from talkinghead.models.bundle import load_model

        assert load_model(ckpt / "model.safetensors").meta["step"] == load_model(ckpt).meta["step"]
    res = train(train_config("warp", **{**over, "steps": 3}), tiny_dataset, tmp_path / "run", resume=True,
                progress=False)
    assert res.steps_done == 1 and res.last_step == 3


def test_train_notes_a_dataset_smaller_than_the_model(tiny_dataset: Path, tmp_path: Path) -> None:
    """Crops prepared at 64² under a model of 128² would be upscaled: training says so, once, up front."""
    logs: list[str] = []
    over = {**MICRO_WARP, "steps": 1, "max_minutes": 1e-6}
    train(train_config("warp", **over), tiny_dataset, tmp_path / "a", progress=False, log=logs.append)
    assert not any("upscaled" in m for m in logs)  # 32² from 64² crops: nothing to say
    train(train_config("warp", **{**over, "model.resolution": 128}), tiny_dataset, tmp_path / "b", progress=False,
          log=logs.append)
    said = [m for m in logs if "upscaled" in m]
    assert len(said) == 1 and "--size 128" in said[0], logs


def test_train_init_from_model_and_time_limit(tiny_dataset: Path, tmp_path: Path) -> None:
    """--init starts a new run (step 0) from a model's weights; --max-minutes stops with a checkpoint."""
    from talkinghead.errors import InputError
    from talkinghead.models.bundle import save_bundle
    from talkinghead.training.checkpoint import latest_checkpoint, read_checkpoint

    over = {**MICRO_WARP, "steps": 1, "checkpoint_every": 1}
    train(train_config("warp", **over), tiny_dataset, tmp_path / "a", progress=False)
    model = save_bundle(tmp_path / "a.safetensors", load_bundle_from_run(tmp_path / "a"))
    src = read_checkpoint(latest_checkpoint(tmp_path / "a"))[0]
    logs: list[str] = []
    # a limit this short stops after the first step, well before --steps
    res = train(train_config("warp", **{**over, "steps": 50, "checkpoint_every": 100, "init": str(model),
                                        "max_minutes": 1e-6, "optim.lr_g": 0.0, "optim.lr_d": 0.0}),
                tiny_dataset, tmp_path / "b", progress=False, log=logs.append)
    assert res.last_step == 1 and res.checkpoint is not None
    assert any("initialised the embedder, generator, discriminator" in m for m in logs)
    assert any("time limit" in m for m in logs)
    got = read_checkpoint(res.checkpoint)[0]
    for k, v in src.items():  # lr 0: the new run's weights are the model's
        if k.startswith(("generator.", "embedder.")) and not k.endswith(("._u", "._v")):  # σ iterates
            assert torch.allclose(got[k], v), k
    with pytest.raises(InputError, match="model settings differ"):
        train(train_config("warp", **{**over, "model.width": 12, "init": str(model)}), tiny_dataset, tmp_path / "c",
              progress=False)


def load_bundle_from_run(run_dir: Path):
    from talkinghead.models.bundle import load_model

    return load_model(run_dir)


@pytest.mark.parametrize("shots", [1, 2])
def test_finetune_warp_reduces_reconstruction_error(micro_warp_model: Path, astronaut_png: Path, shots: int) -> None:
    bundle = load_bundle(micro_warp_model)
    faces = load_sources([astronaut_png])
    crop, lmk = faces[0].crop, faces[0].landmarks
    if shots == 2:  # a second shot: the same photo moved a little
        crop2 = np.roll(crop, 6, axis=1)
        crops, lmks = np.stack([crop, crop2]), np.stack([lmk, lmk + np.array([6.0, 0.0], np.float32)])
    else:
        crops, lmks = crop[None], lmk[None]
    optim = train_config("warp", **{"optim.lr_g": 1e-3}).optim
    episodes = warp_episodes(*model_crops(bundle, crops, lmks), 4, np.random.default_rng(123),
                             bundle.config.motion_resolution)
    base = finetune(bundle, crops, lmks, steps=0, progress=False)
    tuned = finetune(bundle, crops, lmks, steps=30, progress=False, batch_size=2, optim_cfg=optim)
    assert tuned.bundle.kind == "person" and tuned.bundle.psi is not None
    before, after = _recon_l1(base.bundle, episodes), _recon_l1(tuned.bundle, episodes)
    # one shot learns from itself half of the time, where there is little left to learn (0.1095 -> 0.1066)
    assert after < (0.98 if shots == 1 else 0.97) * before, (before, after)


@pytest.mark.parametrize("parts", ["decoder", "adain"])
def test_finetune_parts_keep_the_rest_meta_learned(micro_warp_model: Path, astronaut_png: Path, parts: str) -> None:
    bundle = load_bundle(micro_warp_model)
    face = load_sources([astronaut_png])[0]
    optim = train_config("warp", **{"optim.lr_g": 1e-3}).optim
    base = finetune(bundle, face.crop[None], face.landmarks[None], steps=0, progress=False).bundle
    tuned = finetune(bundle, face.crop[None], face.landmarks[None], steps=3, progress=False, batch_size=2,
                     optim_cfg=optim, parts=parts).bundle
    before, after = base.generator.state_dict(), tuned.generator.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    if parts == "decoder":
        assert changed and not changed & {"encoder", "motion", "project"}, changed
    else:
        assert not changed
    assert not torch.equal(base.psi, tuned.psi)  # the person's AdaIN parameters learn in every mode
    with pytest.raises(InputError, match="unknown fine-tuning parts"):
        finetune(bundle, face.crop[None], face.landmarks[None], steps=1, progress=False, parts="flow")


def test_one_shot_finetune_episodes_include_the_shot_itself(astronaut_png: Path) -> None:
    face = load_sources([astronaut_png])[0]
    eps = warp_episodes(face.crop[None], face.landmarks[None], 40, np.random.default_rng(0), 16)
    same = [bool(torch.equal(eps["frames"][i, 0], eps["target"][i])) for i in range(40)]
    assert 10 <= sum(same) <= 30  # about half: still pixels stay still; the rest are augmented copies
    assert eps["region"].shape == (40, 1, 16, 16)


def _recon_l1(person, b: dict[str, torch.Tensor]) -> float:
    gen = person.generator.eval()
    n, k = b["frames"].shape[:2]
    with torch.no_grad():
        feats = [x.reshape(n, k, *x.shape[1:]) for x in gen.encode(b["frames"].flatten(0, 1), b["sketches"].flatten(0, 1))]
        fake, _ = gen(b["frames"], feats, b["prior"], b["target_sketch"], person.psi.expand(n, -1))
    return float((fake - b["target"]).abs().mean())


def test_animate_with_warp_model_cli_paste_back(micro_warp_model: Path, astronaut_png: Path, astronaut_mp4: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    r = run("animate", "--source", str(astronaut_png), "--driving", str(astronaut_mp4), "--out", str(out),
            "--model", str(micro_warp_model), "--paste-back", "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    info = probe_video(out)
    assert info.n_frames == 40 and (info.width, info.height) == (512, 512)
    frames, _ = read_video(out, max_frames=40)
    photo = astronaut().astype(int)
    # outside the crop the photo is untouched; inside, the untrained model is (close to) a warp of the photo
    assert np.abs(frames[0][480:, :40].astype(int) - photo[480:, :40]).mean() < 8
    assert np.abs(frames[20].astype(int) - photo).mean() < 20


def test_paste_back_scales_a_large_photo_down_to_max_side(micro_warp_model: Path, astronaut_png: Path,
                                                          astronaut_mp4: Path, tmp_path: Path) -> None:
    """A 16-megapixel photo pasted back made a 4000² video at 0.6 frames/s: larger photos are scaled down."""
    import cv2

    from talkinghead.inference.compose import Paster, crop_mask, paste_back

    anim = Animator(micro_warp_model, device="cpu")
    anim.set_source([astronaut_png])
    res = anim.animate(astronaut_mp4, tmp_path / "o.mp4", AnimateOptions(progress=False, paste_back=True,
                                                                          max_side=256, watermark=False))
    info = probe_video(res.path)
    assert (info.width, info.height) == (256, 256)
    frames, _ = read_video(res.path, max_frames=2)
    small = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(frames[0][240:, :20].astype(int) - small[240:, :20]).mean() < 8  # outside the crop: the photo
    # the one-mask paster blends as the general function does (a box hanging over the photo's edge too)
    rng = np.random.default_rng(0)
    photo, gen = astronaut(), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    box = anim.sources[0].box.__class__(-30.0, 300.0, 250.0)
    one = Paster(photo, box, crop_mask(64))(gen)
    assert np.abs(one.astype(int) - paste_back(photo, gen, box, crop_mask(64))).max() == 0
    assert (one[:, 220:] == photo[:, 220:]).all() and (one[:290] == photo[:290]).all()
    assert np.abs(one[330:520, 0:200].astype(int) - photo[330:520, 0:200]).mean() > 20


def test_warp_person_file_roundtrip(micro_warp_model: Path, astronaut_png: Path, astronaut_mp4: Path,
                                    tmp_path: Path) -> None:
    person = tmp_path / "person.safetensors"
    r = run("finetune", "--source", str(astronaut_png), "--out", str(person), "--model", str(micro_warp_model),
            "--steps", "2", "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert load_bundle(person).kind == "person"
    anim = Animator(person, device="cpu")
    anim.set_source([astronaut_png])
    res = anim.animate(astronaut_mp4, tmp_path / "p.mp4", AnimateOptions(progress=False))
    assert res.frames == 40


def test_old_model_files_load_as_synthesis_and_unknown_arch_is_named(micro_model: Path, tmp_path: Path) -> None:
    with safe_open(str(micro_model), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["config"])
    cfg.pop("arch")  # as written before architectures existed
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={**meta, "config": json.dumps(cfg)})
    assert load_bundle(tmp_path / "old.safetensors").config.arch == "synthesis"
    cfg["arch"] = "hologram"
    save_file(tensors, str(tmp_path / "new.safetensors"), metadata={**meta, "config": json.dumps(cfg)})
    with pytest.raises(InputError, match="hologram"):
        load_bundle(tmp_path / "new.safetensors")
    cfg.update(arch="warp", motion_resolution=16, embed_resolution=32, disc_resolution=32)  # a valid warp header
    # over synthesis weights
    save_file(tensors, str(tmp_path / "mixed.safetensors"), metadata={**meta, "config": json.dumps(cfg)})
    with pytest.raises(InputError, match="'warp' architecture"):
        load_bundle(tmp_path / "mixed.safetensors")


def test_driving_video_without_any_face_exit_2(micro_warp_model: Path, astronaut_png: Path, faceless_frames,
                                               tmp_path: Path) -> None:
    clip = write_frames(tmp_path / "noface.mp4", faceless_frames)
    out = tmp_path / "o.mp4"
    r = run("animate", "--source", str(astronaut_png), "--driving", str(clip), "--out", str(out),
            "--model", str(micro_warp_model), "--device", "cpu", "--no-progress")
    assert r.returncode == 2 and "no face" in r.stderr and r.stderr.count("\n") == 1
    assert not out.exists()


def _astronaut_crop() -> tuple[np.ndarray, np.ndarray]:
    face = load_sources([astronaut()], 1)[0]
    return face.crop, face.landmarks  # 256² crop of the photo and its detected landmarks


def _rotate(points: np.ndarray, degrees: float, about: np.ndarray) -> np.ndarray:
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    return (points - about) @ rot.T + about


def test_warp_path_alone_reaches_the_target_landmarks_like_piecewise_affine() -> None:
    from talkinghead.evaluation.baselines import piecewise_affine
    from talkinghead.evaluation.metrics import generated_nme

    crop, src = _astronaut_crop()
    tgt = src.copy()
    tgt[48:68, 1] += np.linspace(0, 10, 20) * (src[48:68, 1] > src[62, 1])  # the lower lip and chin drop: mouth opens
    tgt[5:12, 1] += 6.0
    tgt = _rotate(tgt, 6.0, src.mean(0)) + np.array([4.0, -3.0], np.float32)  # the head turns and moves
    ours = warp_image(crop, tps_grid(tgt, src, 256, 64))  # the prior flow as the generator gets it (64² grid)
    baseline = piecewise_affine(crop, src, tgt)
    nme_ours, nme_pa, nme_still = generated_nme(ours, tgt), generated_nme(baseline, tgt), generated_nme(crop, tgt)
    assert nme_ours <= 0.03, (nme_ours, nme_pa)
    assert nme_ours <= nme_pa + 0.005 and nme_still > 2 * nme_ours  # as good as the baseline; the motion is real


def test_blend_keeps_valid_warped_pixels_exactly() -> None:
    """Where the blend says "warped source", the output is the warped source pixel for pixel (no generated smear);
    where it says "generated", it is the generated image."""
    torch.manual_seed(0)
    gen = WarpGenerator(train_config("warp", **MICRO_WARP).model).eval()
    rng = np.random.default_rng(1)
    src = rng.uniform(8, 24, (68, 2)).astype(np.float32)
    tgt = src + rng.normal(0, 1.5, (68, 2)).astype(np.float32)
    image = torch.rand(1, 1, 3, 32, 32) * 2 - 1
    prior = torch.from_numpy(tps_grid(tgt, src, 32, 16).transpose(2, 0, 1))[None, None]
    feats = [f[None] for f in gen.encode(image[0], torch.zeros(1, 3, 32, 32))]
    args = (image, feats, prior, torch.zeros(1, 3, 16, 16), torch.zeros(1, gen.psi_dim))
    with torch.no_grad():
        bias = gen.out.bias.view(6, 4)
        bias[:3] = 0.7  # generated pixels are far from the source's
        bias[3:] = torch.tensor([30.0, -30.0, -30.0])[:, None]  # valid: trust the warped source
        out, aux = gen(*args)
        assert float(aux["blend"][:, 0].min()) > 0.999
        assert float((out - aux["warped"]).abs().max()) < 1e-5
        assert float((out - aux["generated"]).abs().mean()) > 0.1
        bias[3:] = torch.tensor([-30.0, -30.0, 30.0])[:, None]  # not valid: generate
        out, aux = gen(*args)
        assert float((out - aux["generated"]).abs().max()) < 1e-5


def test_each_frame_renders_from_its_nearest_sources() -> None:
    from talkinghead.inference.source import nearest_sources, source_groups

    base = np.random.default_rng(0).uniform(60, 200, (68, 2)).astype(np.float32)  # a face-sized point cloud
    shift = np.array([1.0, 0.0], np.float32)
    sources = np.stack([base + d * shift for d in (0.0, 10.0, 20.0, 30.0)])
    targets = np.stack([base + d * shift for d in (1.0, 29.0, 14.0, 2.0)])
    assert nearest_sources(targets, sources, 2).tolist() == [[0, 1], [3, 2], [1, 2], [0, 1]]
    assert nearest_sources(targets, sources, 0).tolist() == [[0, 1, 2, 3]] * 4
    groups = {tuple(s): r.tolist() for s, r in source_groups(targets, sources, 2)}
    assert groups == {(0, 1): [0, 3], (2, 3): [1], (1, 2): [2]}
    # expression counts: an open mouth is taken from the open-mouth shot even when another shot is nearer in place
    face = load_sources([astronaut()], 1)[0].landmarks
    opened = face.copy()
    opened[55:60, 1] += 12.0
    opened[64:68, 1] += 12.0
    shots = np.stack([face + 3 * shift, opened + 8 * shift])
    assert nearest_sources(opened[None], shots, 1).tolist() == [[1]]
    assert nearest_sources(face[None], shots, 1).tolist() == [[0]]


def test_several_faces_in_the_source_photo_are_named(micro_warp_model: Path, astronaut_mp4: Path,
                                                     tmp_path: Path) -> None:
    import cv2

    from talkinghead.io import write_image

    photo = astronaut()
    small = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 800, 3), 200, np.uint8)
    canvas[:, :512], canvas[128:384, 532:788] = photo, small
    two = write_image(tmp_path / "two.png", canvas)
    out = tmp_path / "o.mp4"
    r = run("animate", "--source", str(two), "--driving", str(astronaut_mp4), "--out", str(out),
            "--model", str(micro_warp_model), "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    note = [line for line in r.stderr.splitlines() if "faces; using the largest" in line]
    assert len(note) == 1 and "--face-index" in note[0], r.stderr
    faces = [load_sources([canvas], 1, _face_cfg(i))[0] for i in range(int(note[0].split(" has ")[1].split()[0]))]
    centres = [f.box.x0 + f.box.side / 2 for f in faces]
    assert centres[0] < 512 and any(c > 512 for c in centres[1:])  # the largest is the big copy; the small one is offered
    r = run("animate", "--source", str(two), "--driving", str(astronaut_mp4), "--out", str(tmp_path / "x.mp4"),
            "--model", str(micro_warp_model), "--face-index", "9", "--device", "cpu", "--no-progress")
    assert r.returncode == 2 and "out of range" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists()
    for cmd in ("animate", "speak", "finetune", "live"):  # every command that reads a source photo offers it
        assert "--face-index" in run(cmd, "--help").stdout


def test_several_faces_in_the_driving_video_are_named(micro_warp_model: Path, astronaut_frames,
                                                       tmp_path: Path) -> None:
    import cv2

    from talkinghead.config import TrackerConfig
    from talkinghead.faces.track import FaceTracker

    frames = []
    for f in astronaut_frames[0][:8]:  # the moving astronaut, and a still half-size copy of her beside
        canvas = np.full((320, 580, 3), 200, np.uint8)
        canvas[:, :320] = f
        canvas[40:280, 330:570] = cv2.resize(astronaut_frames[0][0], (240, 240), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    clip = write_frames(tmp_path / "two.mp4", frames)
    # the tracker follows the face asked for, and counts what it chose from
    picks = {}
    for i in (0, 1):
        tracker = FaceTracker(TrackerConfig(face_index=i, smoothing=0), name="two.mp4")
        picks[i] = [tracker.update(f).landmarks for f in frames]
        assert tracker.most_faces == 2 and all(p is not None for p in picks[i])
    assert picks[0][0][:, 0].mean() < 320 < picks[1][0][:, 0].mean()
    assert np.ptp([p[:, 0].mean() for p in picks[1]]) < 2.0  # the still copy stays still
    from talkinghead.inference.live import live_tracker

    live = live_tracker(0.0, 25.0, face_index=1, name="the driving stream")  # live follows the same choice
    assert np.abs(live.update(frames[0]).landmarks - picks[1][0]).max() < 1.0
    base = ("animate", "--source", str(tmp_path / "photo.png"), "--model", str(micro_warp_model), "--device", "cpu",
            "--no-progress", "--driving", str(clip))
    from talkinghead.io import write_image

    write_image(tmp_path / "photo.png", astronaut())
    r = run(*base, "--out", str(tmp_path / "a.mp4"))
    assert r.returncode == 0, r.stderr
    note = [line for line in r.stderr.splitlines() if "two.mp4 shows 2 faces" in line]
    assert len(note) == 1 and "following the largest" in note[0] and "--driving-face-index 0-1" in note[0], r.stderr
    r = run(*base, "--out", str(tmp_path / "b.mp4"), "--driving-face-index", "1")
    assert r.returncode == 0 and "following face 1 by size" in r.stderr, r.stderr
    r = run(*base, "--out", str(tmp_path / "c.mp4"), "--driving-face-index", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "at most 2 face(s)" in r.stderr and "--driving-face-index 2 is out of range" in r.stderr
    assert not (tmp_path / "c.mp4").exists()
    # the same clip as a source video: the note and the range error name --face-index
    src = ("animate", "--source", str(clip), "--driving", str(clip), "--model", str(micro_warp_model), "--device",
           "cpu", "--no-progress")
    r = run(*src, "--out", str(tmp_path / "d.mp4"), "--face-index", "1")
    assert r.returncode == 0 and "the source video" in r.stderr and "following face 1 by size (--face-index 0-1" \
        in r.stderr, r.stderr
    r = run(*src, "--out", str(tmp_path / "e.mp4"), "--face-index", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--face-index 2 is out of range" in r.stderr, r.stderr
    r = run("sketch", str(clip), "--out", str(tmp_path / "s.mp4"), "--no-progress")  # checking the tracking says so too
    assert r.returncode == 0 and "two.mp4 shows 2 faces" in r.stderr and "(--face-index 0-1" in r.stderr, r.stderr


def _face_cfg(index: int):
    from talkinghead.config import PrepareConfig, TrackerConfig

    return PrepareConfig(tracker=TrackerConfig(face_index=index))
