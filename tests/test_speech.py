"""Speech → talking head: audio features, the audio-to-motion model, the idle-motion bank, TTS, ``speak``."""

from __future__ import annotations

import json
import shutil
import warnings
import wave
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.data.audio import (
    SAMPLE_RATE,
    STEPS_PER_FRAME,
    frame_times,
    logmel,
    loudness,
    sample_features,
    video_audio_features,
)
from talkinghead.errors import InputError
from talkinghead.faces.measures import apply, mouth_opening
from talkinghead.speech.model import (
    AudioToMotion,
    SpeechModelConfig,
    load_speech_model,
    normalise_level,
    save_speech_model,
)
from talkinghead.speech.shapes import SPEECH_POINTS, speech_targets

from .conftest import write_frames


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def vowel(seconds: float, rate: int = SAMPLE_RATE, f0: float = 120.0, level: float = 0.5) -> np.ndarray:
    """An open vowel /a/: a glottal pulse train through three formant resonators (F1 800, F2 1200, F3 2500 Hz)."""
    from scipy.signal import lfilter

    n = int(seconds * rate)
    src = np.zeros(n)
    src[:: int(rate / f0)] = 1.0
    out = src
    for freq, bw in ((800, 80), (1200, 90), (2500, 120)):
        r = np.exp(-np.pi * bw / rate)
        out = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / rate), r * r], out)
    return (level * out / np.abs(out).max()).astype(np.float32)


def canonical_opening(model: AudioToMotion, features: np.ndarray, neutral_gap: float = 0.0) -> np.ndarray:
    """Mouth opening (inter-ocular units) of a closed neutral mouth moved by the model."""
    disp = model.predict(features)
    shape = np.zeros((len(disp), 68, 2), np.float32)
    shape[:, 36:42] = [-0.5, 0.0]
    shape[:, 42:48] = [0.5, 0.0]
    shape[:, SPEECH_POINTS] += disp
    return mouth_opening(shape) - neutral_gap


# -- features ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_features_align_with_video_frames(tmp_path: Path, astronaut_frames, fps: float) -> None:
    """A clip made now: silence for 20 frames, then a tone; n video frames ↔ n feature rows, and the loudness
    steps up at frame 20 (± 1)."""
    frames = astronaut_frames[0][:36]
    onset = 20
    t = np.arange(int(len(frames) / fps * SAMPLE_RATE)) / SAMPLE_RATE
    wave_ = np.where(t >= onset / fps, 0.3 * np.sin(2 * np.pi * 300 * t), 0.0)
    audio = write_wav(tmp_path / "a.wav", wave_)
    clip = write_frames(tmp_path / "clip.mp4", frames, fps=fps, audio=audio)
    with av.open(str(clip)) as c:
        n = sum(1 for _ in c.decode(video=0))
    feats, info = video_audio_features(clip, np.arange(n), fps)
    assert info["present"] and not info["silent"]
    assert feats.shape == (n, STEPS_PER_FRAME, 80)
    loud = loudness(feats)
    step = int(np.argmax(np.diff(loud))) + 1
    assert abs(step - onset) <= 1, (step, loud.round(0))
    assert loud[: onset - 2].max() < loud[onset + 2 :].min() - 30


def test_logmel_is_librosas() -> None:
    """The features are librosa's log-mel spectrogram (computed with torch's STFT and the stored filterbank, which
    saves importing librosa in every ``speak``): the same filterbank, and the same dB to 1e-4 on a voice, on
    silence and on a clip shorter than one FFT."""
    import librosa

    from talkinghead.data import audio

    np.testing.assert_allclose(audio.mel_filters(), audio.librosa_mel_filters(), rtol=0, atol=1e-9)
    rng = np.random.default_rng(0)
    for x in (vowel(1.3) + 0.01 * rng.standard_normal(int(1.3 * SAMPLE_RATE)), np.zeros(3000), vowel(0.03)):
        x = x.astype(np.float32)
        with warnings.catch_warnings():  # librosa warns that a 30 ms clip is shorter than one FFT
            warnings.simplefilter("ignore", UserWarning)
            mel = librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=audio.N_FFT, hop_length=audio.HOP,
                                                 win_length=audio.WINDOW, n_mels=audio.N_MELS, fmin=audio.F_MIN,
                                                 fmax=audio.F_MAX, center=True, power=2.0)
        want = librosa.power_to_db(mel, ref=1.0, amin=10 ** (audio.FLOOR_DB / 10), top_db=None).T
        got = logmel(x)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_sample_features_times() -> None:
    mel = np.arange(10, dtype=np.float32)[:, None].repeat(80, 1)  # row k = k, at k * 10 ms
    times = frame_times(np.array([0, 1]), fps=25.0)
    out = sample_features(mel, times)
    assert out.shape == (2, STEPS_PER_FRAME, 80)
    np.testing.assert_allclose(out[1, :, 0], (times[1] * 100), atol=1e-4)
    assert sample_features(mel, np.array([-1.0, 5.0]))[:, 0].tolist() == [-100.0, -100.0]  # outside: silence


def test_prepared_clips_carry_aligned_audio(tiny_dataset: Path) -> None:
    from talkinghead.data import PreparedDataset

    ds = PreparedDataset(tiny_dataset, split="all")
    with_sound = [c for c in ds.clips if c.record["audio"]["present"]]
    without = [c for c in ds.clips if not c.record["audio"]["present"]]
    assert with_sound and without  # the astronaut clip has a tone, the warped clip no sound
    for clip in with_sound:
        assert clip.audio().shape == (clip.n_frames, STEPS_PER_FRAME, 80)
    assert without[0].record["audio"]["reason"] == "no audio stream"
    with pytest.raises(InputError, match="no audio"):
        without[0].audio()


def test_old_dataset_is_upgraded(tmp_path: Path, tiny_dataset: Path) -> None:
    """A format-1 dataset: train-speech says what to do; prepare adds the audio and keeps the frames."""
    from talkinghead.config import PrepareConfig
    from talkinghead.data import PreparedDataset, prepare_dataset
    from talkinghead.data.format import read_jsonl
    from talkinghead.speech.train import load_speech_data

    old = tmp_path / "old"
    shutil.copytree(tiny_dataset, old)
    info = json.loads((old / "dataset.json").read_text())
    (old / "dataset.json").write_text(json.dumps({**info, "version": 1}))
    for zpath in (old / "clips").rglob("*.zip"):  # strip what format 2 added
        members = {}
        with zipfile.ZipFile(zpath) as zf:
            for name in zf.namelist():
                if name != "audio.npy":
                    members[name] = zf.read(name)
        meta = json.loads(members["meta.json"])
        meta.pop("audio")
        members["meta.json"] = json.dumps(meta).encode()
        with zipfile.ZipFile(zpath, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    for path in [old / "manifest.jsonl", *(old / "index").glob("*.jsonl")]:
        recs = [{k: v for k, v in r.items() if k != "audio"} for r in read_jsonl(path)]
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(InputError, match="prepare"):
        load_speech_data(old, "train")
    csv = tmp_path / "m.csv"  # the same sources, as prepare found them the first time
    csv.write_text("path,identity,split\n" + "".join(
        f"{c.record['sources'][0]},{c.identity},{c.record['split']}\n" for c in PreparedDataset(tiny_dataset, "all")))
    prepare_dataset([csv], old, PrepareConfig(size=64, min_frames=8, workers=1), progress=False, log=lambda m: None)
    ds = PreparedDataset(old, split="all")
    assert json.loads((old / "dataset.json").read_text())["version"] == 2
    assert all("audio" in c.record for c in ds.clips)
    astro = [c for c in ds.clips if c.record["audio"]["present"]][0]
    assert astro.audio().shape[0] == astro.n_frames


# -- the model -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_speech_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    model = AudioToMotion(SpeechModelConfig(width=8, dilations=[1, 2]))
    with torch.no_grad():
        for p in model.members[0].out.parameters():
            p.normal_(0, 0.01)
        model.out_scale.fill_(0.02)
    return save_speech_model(tmp_path_factory.mktemp("speech") / "tiny.safetensors", model, {"test": True})


def test_model_output_shape_and_level_normalisation(tiny_speech_model: Path) -> None:
    model = load_speech_model(tiny_speech_model)
    rng = np.random.default_rng(0)
    feats = (rng.normal(-40, 10, (33, STEPS_PER_FRAME, 80))).astype(np.float32)
    out = model.predict(feats)
    assert out.shape == (33, len(SPEECH_POINTS), 2) and out.dtype == np.float32
    # the recording's gain does not matter (it is normalised away); silence stays at the bottom of the range
    np.testing.assert_allclose(normalise_level(feats + 12.0), normalise_level(feats), atol=1e-5)
    np.testing.assert_allclose(model.predict(feats + 12.0), out, atol=1e-5)
    assert normalise_level(np.full((5, 4, 80), -100.0, np.float32)).max() <= -50.0  # silence stays silent
    # without the utterance-mean input (cmn), each output frame sees only a window of audio: changing frame 0
    # leaves distant frames unchanged
    import torch

    local = AudioToMotion(SpeechModelConfig(width=8, dilations=[1, 2], cmn=False)).eval()
    torch.nn.init.normal_(local.members[0].out.weight)
    far = local.cfg.context + 1
    x = torch.from_numpy(np.asarray(normalise_level(feats)))[None]
    x2 = x.clone()
    x2[0, 0] = -60.0
    with torch.no_grad():
        y, y2 = local(x)[0].numpy(), local(x2)[0].numpy()
    assert np.abs(y2[0] - y[0]).max() > 0
    np.testing.assert_allclose(y2[far:], y[far:], atol=1e-6)


def test_ensemble_is_the_mean_of_its_members(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from talkinghead.speech.model import combine

    nets = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        m = AudioToMotion(SpeechModelConfig(width=8, dilations=[1, 2]))
        torch.nn.init.normal_(m.members[0].out.weight, std=0.1)
        m.out_scale.fill_(0.05)
        nets.append(m.eval())
    feats = np.random.default_rng(0).normal(-30, 10, (20, STEPS_PER_FRAME, 80)).astype(np.float32)
    a, b = nets[0].predict(feats), nets[1].predict(feats)
    assert np.abs(a - b).max() > 1e-3  # two different members
    both = load_speech_model(save_speech_model(tmp_path / "ens.safetensors", combine(nets)))
    assert both.cfg.members == 2 and len(both.members) == 2
    np.testing.assert_allclose(both.predict(feats), (a + b) / 2, atol=1e-5)
    # a file written before ensembles existed (one network, its weights at the top level) still loads
    path = save_speech_model(tmp_path / "one.safetensors", nets[0])
    tensors = {k.removeprefix("members.0."): v for k, v in load_file(str(path)).items()}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    np.testing.assert_allclose(load_speech_model(tmp_path / "old.safetensors").predict(feats), a, atol=1e-6)


def test_band_warps_average_the_warped_voices(tmp_path: Path) -> None:
    """Inference averages the output over copies of the features with the mel axis stretched (another vocal
    tract): exactly the mean of one-pass predictions of those copies, kept in the file; files made before the
    option get the default set."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from talkinghead.speech.model import warp_bands

    torch.manual_seed(3)
    cfg = SpeechModelConfig(width=8, dilations=[1, 2], loud_mix=0.3, band_warps=[0.9, 1.0, 1.1])
    model = AudioToMotion(cfg)
    torch.nn.init.normal_(model.members[0].out.weight, std=0.1)
    model.out_scale.fill_(0.05)
    model.loud_fit.copy_(torch.tensor([0.002, 0.08]))
    model.open_dir.normal_(0, 1)
    model.eval()
    rng = np.random.default_rng(1)  # a formant moving over a 40 dB range: its peak stays at 0 dB when warped
    centre = rng.uniform(20, 60, (24, STEPS_PER_FRAME, 1))
    feats = (-40.0 + 40.0 * np.exp(-(((np.arange(80) - centre) / 8.0) ** 2))).astype(np.float32)
    level = np.asarray(normalise_level(feats))
    one = AudioToMotion(SpeechModelConfig(**{**cfg.__dict__, "band_warps": [1.0]}))
    one.load_state_dict(model.state_dict())
    singles = [one.predict(warp_bands(level, w)) for w in (0.9, 1.0, 1.1)]
    assert np.abs(singles[0] - singles[2]).max() > 3e-3  # the copies differ
    out = model.predict(feats)
    np.testing.assert_allclose(out, np.mean(singles, 0), atol=1e-4)
    np.testing.assert_allclose(one.predict(feats), singles[1], atol=1e-6)
    path = save_speech_model(tmp_path / "w.safetensors", model)
    assert load_speech_model(path).cfg.band_warps == [0.9, 1.0, 1.1]
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    old_cfg = json.loads(meta["config"])
    del old_cfg["band_warps"]
    save_file(load_file(str(path)), str(tmp_path / "old.safetensors"), metadata={**meta, "config": json.dumps(old_cfg)})
    assert load_speech_model(tmp_path / "old.safetensors").cfg.band_warps == SpeechModelConfig().band_warps


def test_displacements_are_face_size_free(tiny_speech_model: Path) -> None:
    """Targets are in inter-ocular units, and a track moves a twice-as-large face twice as far."""
    from talkinghead.speech.bank import build_bank
    from talkinghead.speech.drive import SpeechDriver

    rng = np.random.default_rng(1)
    base = rng.normal(0, 20, (68, 2)).astype(np.float32)
    base[36:42] = [-30, 0] + rng.normal(0, 1, (6, 2))
    base[42:48] = [30, 0] + rng.normal(0, 1, (6, 2))
    clip = base[None] + rng.normal(0, 0.5, (40, 68, 2)).astype(np.float32)
    clip[:, 66:68, 1] += np.linspace(0, 6, 40)[:, None]  # the mouth opens
    disp1, _, _ = speech_targets(clip + 100)
    disp2, _, _ = speech_targets(clip * 3)
    np.testing.assert_allclose(disp1, disp2, atol=1e-4)  # position and scale free
    assert np.abs(disp1).max() < 1.0

    bank = build_bank([("a", clip, 25.0)])
    driver = SpeechDriver(tiny_speech_model, bank, head_motion=0.0)
    feats = rng.normal(-30, 10, (20, STEPS_PER_FRAME, 80)).astype(np.float32)
    small = base + 128
    big = (base * 2 + 128).astype(np.float32)
    t1 = driver.track(small, feats, 25.0).landmarks
    t2 = driver.track(big, feats, 25.0).landmarks
    np.testing.assert_allclose(t2 - big, 2 * (t1 - small), atol=1e-3)
    moved = np.abs(t1 - small).max(axis=(0, 2))
    assert moved[SPEECH_POINTS].max() > 0 and moved[np.setdiff1d(np.arange(68), SPEECH_POINTS)].max() < 1e-3


def test_head_moves_with_the_bank() -> None:
    from talkinghead.speech.bank import idle_motion, load_bank

    bank = load_bank()
    assert len(bank) >= 10
    head, upper, gaze = idle_motion(bank, 250, 25.0, seed=3)
    assert head.shape == (250, 2, 3) and upper.shape == (250, 31, 2) and gaze.shape == (250, 2)
    assert np.ptp(head[:, :, 2], axis=0).max() > 0.02  # the head travels (inter-ocular units)
    frozen, still, fixed = idle_motion(bank, 50, 25.0, amount=0.0)
    np.testing.assert_allclose(frozen[:, :, :2], np.eye(2)[None].repeat(50, 0), atol=1e-6)
    assert np.abs(still).max() == 0 and np.abs(fixed).max() == 0
    # the eyes look about: over a minute of motion the irises are sent more than the dead band off centre
    _, _, minute = idle_motion(bank, 1500, 25.0, seed=0)
    assert np.abs(minute[:, 0]).max() > 0.1 and 0.05 < np.mean(np.abs(minute[:, 0]) > 0.03) < 0.9


def test_bank_files_keep_the_gaze_and_old_ones_load(tmp_path) -> None:
    from talkinghead.speech.bank import build_bank, load_bank, save_bank

    rng = np.random.default_rng(1)
    clip = rng.normal(0, 20, (30, 68, 2)).astype(np.float32) + 128
    gaze = np.zeros((30, 2), np.float32)
    gaze[10:20, 0] = 0.15
    gaze[14, 0] = -0.3  # a one-frame misreading: the median filter takes it out, the glance stays
    bank = build_bank([("a", clip, 25.0, gaze), ("b", clip[:12], 30.0)])
    assert bank.gaze is not None and bank.gaze.shape == (42, 2)
    np.testing.assert_allclose(bank.gaze[10:20, 0], 0.15)
    np.testing.assert_allclose(bank.gaze[:10], 0.0)
    np.testing.assert_allclose(bank.gaze[30:], 0.0)
    back = load_bank(save_bank(tmp_path / "bank.npz", bank))
    np.testing.assert_allclose(back.gaze, bank.gaze, atol=1e-3)
    with np.load(tmp_path / "bank.npz") as z:
        np.savez(tmp_path / "old.npz", **{k: z[k] for k in z.files if k != "gaze"})
    old = load_bank(tmp_path / "old.npz")  # a bank made before gaze was banked: its eyes stay still
    assert old.gaze is not None and old.gaze.shape == (42, 2) and not old.gaze.any()
    with pytest.raises(ValueError, match="gaze"):
        build_bank([("a", clip, 25.0, gaze[:5])])
    # the gaze is strung from the clips that have one, whichever clip the head's motion comes from
    still = build_bank([("still", clip, 25.0), ("looks", clip, 25.0, gaze)])
    from talkinghead.speech.bank import idle_motion

    for seed in range(4):
        head, _, g = idle_motion(still, 20, 25.0, seed=seed)
        assert np.abs(g[:, 0]).max() > 0.1, seed


def test_shipped_model_silence_closes_and_vowel_opens_the_mouth() -> None:
    model = load_speech_model()  # the shipped one
    fps = 25.0
    silence = sample_features(logmel(np.zeros(2 * SAMPLE_RATE, np.float32)), frame_times(np.arange(50), fps))
    speech = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), vowel(1.0), np.zeros(SAMPLE_RATE // 2,
                                                                                          np.float32)])
    loud = sample_features(logmel(speech), frame_times(np.arange(50), fps))
    quiet_open = canonical_opening(model, silence)
    vowel_open = canonical_opening(model, loud)
    assert np.abs(quiet_open).max() < 0.03, quiet_open.round(3)
    assert vowel_open[15:35].mean() > 0.08, vowel_open.round(3)  # the frames inside the vowel
    assert vowel_open[15:35].mean() > 3 * max(vowel_open[:6].mean(), 0.01)


# -- training ------------------------------------------------------------------------------------------------------
def test_identity_balanced_sampling() -> None:
    """One speaker with many clips is drawn like one identity (∝ √ its frames), not like many."""
    from talkinghead.speech.train import sampling_weights

    keys = [f"many/c{i}" for i in range(40)] + ["one/a", "other/b", "other/c"]
    lengths = np.array([75] * 40 + [300, 100, 200], np.float64)
    per_clip = sampling_weights(keys, lengths, "clip")
    balanced = sampling_weights(keys, lengths, "identity")
    assert per_clip.sum() == pytest.approx(1) and balanced.sum() == pytest.approx(1)
    assert per_clip[:40].sum() > 0.8  # 40 short clips of one person outweigh everyone else
    share = {i: balanced[[k.startswith(i + "/") for k in keys]].sum() for i in ("many", "one", "other")}
    np.testing.assert_allclose([share["many"] / share["one"], share["other"] / share["one"]],
                               [np.sqrt(3000 / 300), 1.0], rtol=1e-6)
    assert balanced[42] == pytest.approx(2 * balanced[41])  # within an identity: in proportion to length
    with pytest.raises(InputError):
        sampling_weights(keys, lengths, "speaker")


def test_band_warp_moves_formants() -> None:
    from talkinghead.speech.train import warp_bands

    f = np.full((3, 4, 80), -60.0, np.float32)
    f[..., 20] = 0.0
    np.testing.assert_allclose(warp_bands(f, 1.0), f)
    assert int(np.argmax(warp_bands(f, 1.2)[0, 0])) == 24  # a peak at band 20 moves up by 20 %
    assert int(np.argmax(warp_bands(f, 0.8)[0, 0])) == 16
    assert warp_bands(f, 1.2).shape == f.shape


def test_speed_augmentation_keeps_sound_and_lips_together() -> None:
    """A window played faster or slower: features and targets resampled on one clock, so the frame whose
    features say "time t" still carries the target of time t."""
    from talkinghead.speech.train import resample_time

    n, steps = 30, STEPS_PER_FRAME
    instant_time = (np.arange(n * steps) + 0.5) / steps - 0.5  # each feature instant's time in frames
    feats = np.repeat(instant_time.reshape(n, steps, 1), 3, -1).astype(np.float32)
    targets = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    same_f, same_t = resample_time(feats, targets, 1.0)
    np.testing.assert_allclose(same_f, feats, atol=1e-5)
    np.testing.assert_allclose(same_t, targets, atol=1e-5)
    for rate in (0.8, 1.25):
        f, t = resample_time(feats, targets, rate)
        assert len(f) == len(t) == int(np.floor((n - 1) / rate)) + 1
        np.testing.assert_allclose(t[:, 0, 0], np.arange(len(t)) * rate, atol=1e-4)  # frame i ← source time i·rate
        inner = slice(1, len(t) - 1)  # (the first and last frames' outer instants are clamped at the clip's ends)
        np.testing.assert_allclose(f[inner].mean(axis=(1, 2)), t[inner, 0, 0], atol=1e-4)
        assert np.all(np.diff(f.reshape(-1, 3)[:, 0]) >= -1e-6)  # instants stay in order


def test_loudness_mix(tmp_path: Path) -> None:
    """``loud_mix``: part of the motion is a jaw opened in proportion to loudness, fitted on the training clips;
    silence leaves it closed, it is saved with the model, and 0 leaves the networks alone."""
    import torch

    from talkinghead.speech.train import SpeechData, fit_loudness_motion

    rng = np.random.default_rng(0)
    neutral = np.zeros((68, 2), np.float32)
    neutral[36:42], neutral[42:48] = [-0.5, 0.0], [0.5, 0.0]
    neutral[[61, 62, 63]], neutral[[65, 66, 67]] = [0.0, 0.5], [0.0, 0.5]
    data = SpeechData([], [], [], [])
    for _ in range(3):
        level = rng.uniform(-60, 0, 50).astype(np.float32)  # dB re the loud end, per frame
        feats = np.repeat(level[:, None, None], STEPS_PER_FRAME, 1).repeat(80, 2)
        opening = 0.002 * (level + 60)  # 0 in silence, 0.12 at full level
        aligned = np.repeat(neutral[None], 50, 0)
        aligned[:, [65, 66, 67], 1] += opening[:, None]
        data.features.append(feats)
        data.aligned.append(aligned)
        data.neutrals.append(neutral)
        data.targets.append((aligned[:, SPEECH_POINTS] - neutral[SPEECH_POINTS]).astype(np.float32))
    model = AudioToMotion(SpeechModelConfig(width=8, dilations=[1, 2], loud_mix=0.5))
    fit_loudness_motion(model, data)
    slope, intercept = model.loud_fit.tolist()
    assert slope == pytest.approx(0.002, rel=1e-3) and intercept == pytest.approx(0.12, rel=1e-3)
    torch.nn.init.normal_(model.members[0].out.weight, std=0.1)
    model.cfg.smooth = 0.0
    path = save_speech_model(tmp_path / "mix.safetensors", model)
    loaded = load_speech_model(path)
    feats = np.full((20, STEPS_PER_FRAME, 80), -100.0, np.float32)  # 10 loud frames, then digital silence
    feats[:10] = -3.0  # (its loud end; the level is normalised to it)
    both = loaded.predict(feats)
    loaded.cfg.loud_mix = 0.0
    net = loaded.predict(feats)
    assert np.abs(net).max() > 1e-3  # the networks' part is not nothing
    jaw = (both - 0.5 * net) / 0.5
    lower = np.searchsorted(SPEECH_POINTS, [65, 66, 67])
    np.testing.assert_allclose(jaw[:10, lower, 1], 0.12, atol=2e-3)  # the lower lip drops with loudness
    np.testing.assert_allclose(jaw[10:], 0.0, atol=1e-5)  # silence: closed
    np.testing.assert_allclose(np.delete(jaw, lower, 1), 0.0, atol=1e-4)


def test_correlation_loss() -> None:
    import torch

    from talkinghead.speech.train import _corr_loss

    t = torch.sin(torch.linspace(0, 6, 40))[None].repeat(3, 1) * 0.1
    assert float(_corr_loss(2 * t + 1, t)) == pytest.approx(0.0, abs=1e-5)  # scale and offset do not matter
    assert float(_corr_loss(-t, t)) == pytest.approx(2.0, abs=1e-5)
    flat = torch.zeros(2, 40)  # windows where the real mouth does not move carry no correlation
    assert float(_corr_loss(torch.randn(2, 40), flat)) == 0.0
    mixed = torch.cat([t[:1], flat[:1]])
    assert float(_corr_loss(torch.cat([-t[:1], torch.randn(1, 40)]), mixed)) == pytest.approx(2.0, abs=1e-5)


# -- TTS and the command -------------------------------------------------------------------------------------------
def test_tts_speaks_and_checks_its_input() -> None:
    from talkinghead.speech import tts

    s = tts.synthesize("Hello world.", language="en", voice="m3")
    assert s.rate > 8000 and 0.5 < s.seconds < 4 and np.abs(s.samples).max() > 0.05
    assert "en" in tts.languages() and "fr" in tts.languages() and "f3" in tts.voices()
    # listed language codes that are not voice files themselves are spoken by the file that has them
    for language in ("zh", "en-gb", "fr-fr", "pt-pt"):
        assert language in tts.languages()
        assert tts.synthesize("mama", language=language, voice="f3").seconds > 0.2
    # eSpeak NG's own LANGUAGE+VARIANT spelling: the same sound as the two given apart
    joined = tts.synthesize("mama", voice="fr+f3")
    assert (joined.language, joined.voice) == ("fr", "f3")
    apart = tts.synthesize("mama", language="fr", voice="f3")  # (eSpeak's waveform has random jitter)
    assert joined.samples.shape == apart.samples.shape
    assert [p.symbol for p in joined.phonemes] == [p.symbol for p in apart.phonemes]
    for args, match in ((("  ",), "empty"), (("hi", "xx-nope"), "unknown language"), (("hi", "en", "nobody"),
                                                                                        "unknown voice")):
        with pytest.raises(InputError, match=match):
            tts.synthesize(*args)


def test_tts_language_without_dictionary_is_one_clear_error(capfd: pytest.CaptureFixture[str]) -> None:
    from talkinghead.speech import tts

    try:  # listed by eSpeak NG, but the wheel has no Faroese dictionary (a system eSpeak NG may have one)
        tts.synthesize("hi", language="fo")
    except InputError as e:
        assert "no dictionary" in str(e)
        assert capfd.readouterr().err == ""  # eSpeak NG's own complaint does not come first


def test_tts_says_which_phoneme_is_heard_when() -> None:
    from talkinghead.speech import tts
    from talkinghead.speech.phonemes import Phoneme, closes_lips

    s = tts.synthesize("Mama bought a map.", language="en")
    assert len(s.phonemes) >= 8
    starts = np.array([p.start for p in s.phonemes])
    assert np.all(np.diff(starts) >= 0) and starts[0] >= 0 and s.phonemes[-1].end <= s.seconds + 1e-6
    closures = [p for p in s.phonemes if closes_lips(p.symbol)]
    assert len(closures) >= 4  # m, m, m, p
    # the times match the audio: the lips-closed consonants are quieter than the vowels around them
    def rms(p: Phoneme) -> float:
        return float(np.sqrt(np.mean(s.samples[int(p.start * s.rate):int(p.end * s.rate)] ** 2) + 1e-12))

    vowels = [p for p in s.phonemes if p.symbol.strip("ˈˌ")[:1] in ("a", "ɑ", "ɔ", "ɐ", "æ")]
    assert vowels and np.mean([rms(p) for p in closures]) < 0.7 * np.mean([rms(p) for p in vowels])


def test_articulation_scales_the_mouth_motion() -> None:
    from talkinghead.data.examples import astronaut
    from talkinghead.faces.landmarks import detect_landmarks
    from talkinghead.speech.drive import SpeechDriver

    model, face = load_speech_model(), detect_landmarks(astronaut())
    feats = sample_features(logmel(vowel(1.0)), frame_times(np.arange(25), 25.0))
    disp = {a: SpeechDriver(model, head_motion=0.0, articulation=a).track(face, feats, 25.0).displacements
            for a in (0.0, 1.0, 2.0)}
    assert np.abs(disp[0.0]).max() == 0 and np.abs(disp[1.0]).max() > 0.01
    np.testing.assert_allclose(disp[2.0], 2 * disp[1.0], rtol=1e-5, atol=1e-6)


def test_a_photo_with_its_mouth_open_speaks_from_rest() -> None:
    """The astronaut smiles with her teeth showing. The audio model's displacements are learnt from resting faces,
    so added to her open mouth they never closed it (silence left it at 0.15); it is closed to rest first, so
    silence keeps it nearly shut and a vowel opens it. ``rest_mouth=False`` keeps the photo's mouth."""
    from talkinghead.data.examples import astronaut
    from talkinghead.faces.landmarks import detect_landmarks
    from talkinghead.speech.drive import SpeechDriver
    from talkinghead.speech.phonemes import OPEN_PHOTO, REST_OPENING, opening_direction, rest_mouth
    from talkinghead.speech.shapes import to_canonical_matrix

    model, face = load_speech_model(), detect_landmarks(astronaut())
    assert mouth_opening(face) > OPEN_PHOTO
    fps = 25.0
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), vowel(1.0), np.zeros(SAMPLE_RATE, np.float32)])
    feats = sample_features(logmel(audio), frame_times(np.arange(75), fps))
    quiet, loud = np.r_[0:20, 60:75], np.r_[30:45]
    rested = mouth_opening(SpeechDriver(model, head_motion=0.0).track(face, feats, fps).landmarks)
    kept = mouth_opening(SpeechDriver(model, head_motion=0.0, rest_mouth=False).track(face, feats, fps).landmarks)
    assert rested[quiet].max() < 0.08 and rested[loud].mean() > rested[quiet].mean() + 0.05, rested.round(3)
    assert kept[quiet].min() > 0.12 and kept[loud].mean() > kept[quiet].mean() + 0.05, kept.round(3)
    # the rest is reached along the opening direction; a photo at rest is left as it is
    canon = apply(to_canonical_matrix(face), face)
    open_dir = opening_direction(model, canon)
    assert mouth_opening(rest_mouth(canon, open_dir)) == pytest.approx(REST_OPENING, abs=0.005)
    closed = rest_mouth(canon, open_dir, rest=0.02)
    np.testing.assert_array_equal(rest_mouth(closed, open_dir), closed)
    np.testing.assert_array_equal(rest_mouth(canon, open_dir)[17:48], canon[17:48])  # brows, eyes, nose stay


def test_lip_closure_curve() -> None:
    from talkinghead.speech.phonemes import Phoneme, closes_lips, closure

    assert closes_lips("m") and closes_lips("ˈb") and closes_lips("pʰ") and not closes_lips("ˈa")
    assert not closes_lips("") and not closes_lips("f")
    seq = [Phoneme(0.0, 0.2, ""), Phoneme(0.2, 0.25, "p"), Phoneme(0.25, 0.5, "ˈa"), Phoneme(0.5, 0.62, "m"),
           Phoneme(0.62, 1.0, "")]
    c = closure(seq, 25, 25.0, lead=0.0)
    assert c.shape == (25,) and c.max() == 1.0
    assert c[6] == 1.0  # a 50 ms /p/ (shorter than two frames) is still closed on its middle frame
    assert c[13] == 1.0 and c[14] == 1.0  # the /m/ from 0.50 to 0.62 s: frames 13-14 (12.5-15.5)
    assert c[9] < 0.05 and c[20:].max() < 0.05  # open on the vowel, free in the pause
    assert 0 < c[7] < 0.5  # the closure fades over about a frame
    assert closure(seq[2:3], 25, 25.0).max() == 0.0


def test_text_lips_close_on_m_and_p(tmp_path: Path) -> None:
    from talkinghead.data.examples import astronaut
    from talkinghead.faces.landmarks import detect_landmarks
    from talkinghead.speech.drive import SpeechDriver, load_speech
    from talkinghead.speech.phonemes import closes_lips, closure

    speech = load_speech(None, "Mama, papa, I am happy.", tmp_path)
    face = detect_landmarks(astronaut())  # a real face's 68 landmarks: she smiles with parted lips
    closed = [int(round((p.start + p.end) / 2 * speech.fps)) for p in speech.phonemes if closes_lips(p.symbol)]
    assert len(closed) >= 5
    opening = {}
    for on in (True, False):
        track = SpeechDriver(head_motion=0.0, lip_closures=on).track(face, speech.features, speech.fps,
                                                                      speech.phonemes)
        opening[on] = mouth_opening(track.landmarks)
    assert opening[True][closed].max() < 0.03 < 0.1 < mouth_opening(face), opening[True][closed].round(3)
    assert opening[False][closed].min() > 0.05  # the audio model alone leaves them parted
    # elsewhere the audio model's motion is kept
    far = closure(speech.phonemes, len(speech.features), speech.fps) < 1e-3
    assert far.sum() >= 8  # a sentence full of p and m: few frames are free of them
    np.testing.assert_allclose(opening[True][far], opening[False][far], atol=2e-3)


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory, astronaut_png: Path, micro_model: Path,
           tiny_speech_model: Path) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("speak") / "said.mp4"
    rc = main(["speak", "--source", str(astronaut_png), "--text", "Hello there.", "--out", str(out),
               "--model", str(micro_model), "--speech-model", str(tiny_speech_model), "--size", "64",
               "--no-progress"])
    return rc, out


def test_speak_cli_end_to_end_with_text(spoken: tuple[int, Path]) -> None:
    from talkinghead.provenance.verify import verify_file

    rc, out = spoken
    assert rc == 0 and out.is_file()
    with av.open(str(out)) as c:
        assert c.streams.audio, "the speech is the sound track"
        fps = float(c.streams.video[0].average_rate)
        n = sum(1 for _ in c.decode(video=0))
        audio_s = float(c.streams.audio[0].duration * c.streams.audio[0].time_base)
    assert fps == 25.0 and n > 10
    assert abs(n / fps - audio_s) < 0.2
    assert verify_file(out).synthetic  # watermarked and signed like every output


def _bad(tmp_path: Path, kind: str) -> tuple[list[str], str]:
    if kind == "silent":
        return ["--audio", str(write_wav(tmp_path / "silent.wav", np.zeros(SAMPLE_RATE)))], "silent"
    if kind == "unreadable":
        p = tmp_path / "broken.wav"
        p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
        return ["--audio", str(p)], "not a readable audio file|no audio|no sound"
    if kind == "not-audio":
        from talkinghead.data.examples import astronaut
        from talkinghead.io import write_image

        return ["--audio", str(write_image(tmp_path / "photo.png", astronaut()))], "no audio stream"
    if kind == "too-long":
        t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
        return ["--audio", str(write_wav(tmp_path / "long.wav", 0.3 * np.sin(2 * np.pi * 200 * t))),
                "--max-seconds", "2"], "limit is 2 s"
    if kind == "too-short":
        t = np.arange(SAMPLE_RATE // 100) / SAMPLE_RATE
        return ["--audio", str(write_wav(tmp_path / "click.wav", 0.3 * np.sin(2 * np.pi * 200 * t)))], "10 ms long"
    if kind == "empty-text":
        return ["--text", "   "], "empty"
    if kind == "unknown-voice":
        return ["--text", "hi", "--voice", "nobody"], "unknown voice"
    if kind == "articulation":
        return ["--text", "hi", "--articulation", "9"], "out of range"
    return ["--text", "hi", "--language", "xx-nope"], "unknown language"


@pytest.mark.parametrize("kind", ["silent", "unreadable", "not-audio", "too-long", "too-short", "empty-text",
                                  "unknown-voice",
                                  "unknown-language", "articulation"])
def test_speak_bad_input_exits_2_with_one_line(tmp_path: Path, capsys, astronaut_png: Path, micro_model: Path,
                                               tiny_speech_model: Path, kind: str) -> None:
    import re

    said, match = _bad(tmp_path, kind)
    out = tmp_path / "out.mp4"
    rc = main(["speak", "--source", str(astronaut_png), *said, "--out", str(out), "--model", str(micro_model),
               "--speech-model", str(tiny_speech_model), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(match, err), err
    assert not out.exists()


def test_train_speech_cli_smoke(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(["train-speech", "--data", str(tiny_dataset), "--out", str(out), "--steps", "3", "--no-progress",
               "--set", "min_sync=-2", "--set", "bank_min_frames=16", "--set", "model.width=8",
               "--set", "batch_size=2", "--set", "window=8"])
    assert rc == 0, capsys.readouterr().err
    model = load_speech_model(out / "speech.safetensors")
    assert model.cfg.width == 8 and model.info["steps"] == 3
    from talkinghead.speech.bank import load_bank

    assert len(load_bank(out / "idle_motion.npz")) >= 1


def test_web_speak_tab_handler(tmp_path: Path, micro_warp_model: Path, tiny_speech_model: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's "Speak" handler: typed text → a marked video; empty text → one friendly line."""
    gr = pytest.importorskip("gradio")
    from talkinghead.models.bundle import load_model
    from talkinghead.web import Limits
    from talkinghead.web.app import Service, prepare_workspace
    from talkinghead.web.speak import SAY_AUDIO, SAY_TEXT, SPEAK_EXAMPLE, speak_request

    monkeypatch.setattr("talkinghead.speech.drive.load_speech_model", lambda path=None: load_speech_model(
        tiny_speech_model))
    service = Service(load_model(micro_warp_model), Limits(), "cpu", prepare_workspace(tmp_path / "web"))
    video, status = speak_request(service, SPEAK_EXAMPLE, None, SAY_TEXT, "Hi there.", "en", "(default)", None,
                                  False)
    assert Path(video).is_file() and "marked as synthetic" in status
    with pytest.raises(gr.Error) as err:
        speak_request(service, SPEAK_EXAMPLE, None, SAY_TEXT, "  ", "en", "(default)", None, False)
    assert "empty" in str(err.value.message)
    with pytest.raises(gr.Error) as err:
        speak_request(service, SPEAK_EXAMPLE, None, SAY_AUDIO, "", "en", None, None, False)
    assert "audio" in str(err.value.message)
