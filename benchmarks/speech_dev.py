"""Choose between speech-model recipes on a dev set, never on the held-out test identities.

Dev set: the train split's identities outside the test patterns (``grid_spk_*``, ``mead_*``, ``vr?_*``, the
speech model's ``holdout``) whose ``zlib.crc32(name) % 3 == 1`` (7 identities, 9 in-sync clips, 1,617 frames on
the corpus). The recipe is trained on the remaining train-split clips (in sync, sync >= 0.1), then the mouth
opening predicted from audio is compared with the tracked one on the dev clips (pooled Pearson r, mean per-clip r,
MAE, and the loudness baseline fitted on the same training clips). Test identities are never loaded.

    python benchmarks/speech_dev.py --data /tmp/ds/speech --steps 500 [--set model.members=2 ...] [--smooth 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from fnmatch import fnmatch

import numpy as np

from talkinghead.config import parse_overrides
from talkinghead.data.audio import loudness
from talkinghead.speech.shapes import SPEECH_POINTS, mouth_opening
from talkinghead.speech.train import SpeechTrainConfig, fit_speech_model, load_speech_data

TEST = ["grid_spk_*", "mead_*", "vr?_*"]


def is_dev(identity: str) -> bool:
    return zlib.crc32(identity.encode()) % 3 == 1


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def measure(model, data, fit) -> dict:
    lx = np.concatenate([loudness(f) for f in fit.features])
    ly = np.concatenate([mouth_opening(a) - mouth_opening(n) for a, n in zip(fit.aligned, fit.neutrals)])
    slope, icpt = np.polyfit(lx, ly, 1)
    preds, trues, louds, r_clip = [], [], [], []
    for f, a, n in zip(data.features, data.aligned, data.neutrals):
        disp = model.predict(f)
        shape = np.repeat(n[None], len(disp), 0)
        shape[:, SPEECH_POINTS] = n[SPEECH_POINTS] + disp
        p, t = mouth_opening(shape), mouth_opening(a)
        preds.append(p), trues.append(t), r_clip.append(pearson(p, t))
        louds.append(mouth_opening(n) + np.maximum(0, icpt + slope * loudness(f)))
    p, t, lo = map(np.concatenate, (preds, trues, louds))
    return {"frames": len(t), "r": round(pearson(p, t), 3), "r_clip_mean": round(float(np.mean(r_clip)), 3),
            "mae": round(float(np.abs(p - t).mean()), 4), "r_loudness": round(pearson(lo, t), 3),
            "std_ratio": round(float(p.std() / t.std()), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--set", action="append", default=[], help="override a SpeechTrainConfig setting")
    ap.add_argument("--smooth", type=float, nargs="*", default=[], help="also measure these output smoothings")
    args = ap.parse_args()
    cfg = SpeechTrainConfig(steps=args.steps)
    for key, value in parse_overrides(args.set).items():
        obj, *path = [cfg, *key.split(".")]
        for part in path[:-1]:
            obj = getattr(obj, part)
        setattr(obj, path[-1], value)
    train = load_speech_data(args.data, "train", exclude=TEST, min_sync=cfg.min_sync)
    keep = [i for i, k in enumerate(train.keys) if not is_dev(k.split("/")[0])]
    dev_idx = [i for i, k in enumerate(train.keys) if is_dev(k.split("/")[0])]

    def pick(idx):
        from talkinghead.speech.train import SpeechData

        return SpeechData(*[[getattr(train, f)[i] for i in idx] for f in ("features", "targets", "neutrals", "keys",
                                                                          "aligned", "sync")])

    fit, dev = pick(keep), pick(dev_idx)
    print(f"train {len(fit.keys)} clips / {fit.frames} frames; dev {len(dev.keys)} clips / {dev.frames} frames "
          f"({sorted({k.split('/')[0] for k in dev.keys})})")
    t0 = time.perf_counter()
    model, _ = fit_speech_model(fit, cfg, progress=False)
    out = {"steps": args.steps, "set": args.set, "seconds": round(time.perf_counter() - t0),
           f"smooth {model.cfg.smooth:g}": measure(model, dev, fit)}
    for s in args.smooth:
        model.cfg.smooth = s
        out[f"smooth {s:g}"] = measure(model, dev, fit)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
