from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from talkinghead.api import train_config
from talkinghead.data.dataset import PreparedDataset
from talkinghead.data.episodes import EpisodeDataset
from talkinghead.errors import InputError
from talkinghead.training.checkpoint import list_checkpoints, read_checkpoint
from talkinghead.training.metalearn import MetaLearner, TrainingDiverged, _collate, train
from tests.conftest import MICRO


def test_episode_never_uses_target_as_source(tiny_dataset: Path) -> None:
    eps = EpisodeDataset(PreparedDataset(tiny_dataset, split="train"), 32, k=4, flip=False)
    item = eps[3]
    assert item["frames"].shape == (4, 3, 32, 32) and item["target"].shape == (3, 32, 32)
    assert all(not torch.equal(f, item["target"]) for f in item["frames"])
    assert torch.equal(eps[3]["target"], item["target"])  # a pure function of the sample number


def test_losses_decrease_on_a_fixed_batch(tiny_dataset: Path) -> None:
    cfg = train_config("tiny", **MICRO, **{"optim.lr_g": 2e-3, "optim.lr_d": 2e-3})
    eps = EpisodeDataset(PreparedDataset(tiny_dataset, split="train"), 32, k=2, flip=False)
    batch = _collate([eps[i] for i in range(2)])
    learner = MetaLearner(cfg, len(eps.keys), torch.device("cpu"))
    history = [learner.step(batch)[0] for _ in range(12)]
    first, last = history[0], history[-1]
    assert last["content"] < 0.8 * first["content"], (first, last)
    assert last["match"] < first["match"]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_is_bit_identical(tiny_dataset: Path, tmp_path: Path) -> None:
    over = {**MICRO, "steps": 3, "checkpoint_every": 2}
    full = tmp_path / "full"
    train(train_config("tiny", **over), tiny_dataset, full, progress=False)
    ckpts = list_checkpoints(full)
    assert [p.name for p in ckpts] == ["step-00000002", "step-00000003"]
    # a second run stopped after step 2, then resumed
    part = tmp_path / "part"
    train(train_config("tiny", **{**over, "steps": 2}), tiny_dataset, part, progress=False)
    result = train(train_config("tiny", **over), tiny_dataset, part, resume=True, progress=False)
    assert result.steps_done == 1 and result.last_step == 3
    a, b = _metrics(full)[-1], _metrics(part)[-1]
    a.pop("images_per_second"), b.pop("images_per_second")
    assert a == b  # every loss of step 3, to the last bit
    ma, _, sa = read_checkpoint(ckpts[-1])
    mb, _, sb = read_checkpoint(list_checkpoints(part)[-1])
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert sa["data_hash"] == sb["data_hash"] and sa["step"] == 3


def test_run_folder_guards(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(train_config("tiny", **{**MICRO, "steps": 1}), tiny_dataset, run, progress=False)
    with pytest.raises(InputError, match="--resume"):
        train(train_config("tiny", **{**MICRO, "steps": 2}), tiny_dataset, run, progress=False)
    with pytest.raises(InputError, match="model settings differ"):
        train(train_config("tiny", **{**MICRO, "steps": 2, "model.width": 16}), tiny_dataset, run, resume=True,
              progress=False)


def test_nan_stops_with_clear_message(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = MetaLearner.step
    calls = []

    def poisoned(self: MetaLearner, batch: dict, step: int = 0) -> tuple:
        calls.append(1)
        if len(calls) == 2:  # weights blown up after the first (checkpointed) step
            with torch.no_grad():
                for p in self.generator.parameters():
                    p.fill_(float("nan"))
        return original(self, batch, step)

    monkeypatch.setattr(MetaLearner, "step", poisoned)
    cfg = train_config("tiny", **{**MICRO, "steps": 3, "checkpoint_every": 1})
    with pytest.raises(TrainingDiverged, match=r"step 2: generator loss became nan; the last good checkpoint is .*step-00000001"):
        train(cfg, tiny_dataset, tmp_path / "run", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-00000001"]


def test_cli_train_writes_samples_and_tensorboard(tiny_dataset: Path, tmp_path: Path) -> None:
    sets = [a for k, v in {**MICRO, "sample_every": 2}.items() for a in ("--set", f"{k}={v}")]
    r = subprocess.run([sys.executable, "-m", "talkinghead", "train", "--data", str(tiny_dataset), "--out",
                        str(tmp_path / "run"), "--preset", "tiny", "--steps", "2", "--no-progress", *sets],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "samples" / "step-00000002.png").is_file()
    assert any((tmp_path / "run" / "tensorboard").iterdir())


def test_torchrun_two_processes_gloo(tiny_dataset: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this Python")
    sets = [a for k, v in {**MICRO, "steps": 2}.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "talkinghead", "train",
                        "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--preset", "tiny", "--no-progress",
                        *sets],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpts = list_checkpoints(tmp_path / "run")
    assert [p.name for p in ckpts] == ["step-00000002"]
    assert len(_metrics(tmp_path / "run")) == 2  # rank 0 alone logs
