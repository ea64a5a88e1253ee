"""Lip sync from audio alone, on clips whose speakers the speech model never saw (the dataset's val split).

Per frame, the mouth opening (inner-lip distance / inter-ocular distance) predicted from the clip's audio
against the mouth opening tracked in the real video: Pearson correlation and mean absolute error, per clip and
over all frames pooled. The prediction is the clip's neutral face (its most-closed-mouth frames, as a source
photo would give it) plus the model's displacements. Baselines in the same run:

- ``closed``: the neutral face's mouth, never moving (its correlation is undefined: a constant);
- ``loudness``: the opening a linear function of the frame's loudness (dB re the utterance's loud end), fitted by
  least squares on the clips the model was trained on (its file lists them), never below the closed mouth.

Groups: the ``--split`` (default ``val``) and the train-split identities the model was trained without (its
``holdout`` patterns). A clip the model was trained on is never scored: the benchmark stops if one is in a group.

The audio-visual offset is the lag (frames, -5..5) that maximises the correlation of loudness and mouth opening:
positive = the mouth moves after the sound. We report it for our output and for the real video.

    python benchmarks/lipsync.py --data DATASET [--model speech.safetensors] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from talkinghead.data.audio import loudness
from talkinghead.faces.measures import mouth_opening
from talkinghead.speech.model import load_speech_model, normalise_level
from talkinghead.speech.shapes import SPEECH_POINTS
from talkinghead.speech.train import load_speech_data

MAX_LAG = 5
SYNC = 0.1
"""A clip whose real loudness and mouth opening correlate less than this at every lag within ±2 frames is marked
out of sync (its soundtrack is not what its lips say); train-speech leaves such clips out of training."""


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def lag_curve(loud: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """corr(loud[t], opening[t + L]) for L = -MAX_LAG..MAX_LAG."""
    out = []
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        if lag >= 0:
            out.append(pearson(loud[: len(loud) - lag], opening[lag:]))
        else:
            out.append(pearson(loud[-lag:], opening[: len(opening) + lag]))
    return np.nan_to_num(np.asarray(out), nan=-2.0)


def best_lag(loud: np.ndarray, opening: np.ndarray) -> tuple[int, float]:
    """The lag L maximising corr(loud[t], opening[t + L])."""
    curve = lag_curve(loud, opening)
    return int(np.argmax(curve)) - MAX_LAG, float(curve.max())


def fmt(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.3f}"


def evaluate(title: str, data, model, slope: float, intercept: float, articulation: float = 1.0) -> dict:
    """Print and return the table of one group of clips."""
    rows = []
    for key, feats, aligned, neutral, sync in zip(data.keys, data.features, data.aligned, data.neutrals, data.sync):
        # data.features are already level-normalised; predict() normalises again, which leaves them unchanged
        disp = model.predict(feats) * articulation
        shape = np.repeat(neutral[None], len(disp), 0)
        shape[:, SPEECH_POINTS] = neutral[SPEECH_POINTS] + disp
        true = mouth_opening(aligned)
        preds = {"ours": mouth_opening(shape), "closed": np.full_like(true, mouth_opening(neutral))}
        loud_db = loudness(normalise_level(feats))
        preds["loud"] = mouth_opening(neutral) + np.maximum(0.0, intercept + slope * loud_db)
        row = {"clip": key, "frames": len(true), "sync": sync, "in_sync": bool(sync >= SYNC), "true": true,
               "lag_ours": best_lag(loud_db, preds["ours"])[0], "lag_real": best_lag(loud_db, true)[0],
               "curve_ours": lag_curve(loud_db, preds["ours"]), "curve_real": lag_curve(loud_db, true)}
        for name, pred in preds.items():
            row[f"r_{name}"] = pearson(pred, true)
            row[f"mae_{name}"] = float(np.abs(pred - true).mean())
            row[name] = pred
        rows.append(row)

    print(f"\n### {title}: {len(rows)} clip(s) with sound, {sum(r['frames'] for r in rows)} frames\n")
    print("| clip | frames | sync (real) | r ours | r loudness | r closed | MAE ours | MAE loudness | MAE closed "
          "| AV lag ours | AV lag real |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['frames']} | {r['sync']:.2f}{'' if r['in_sync'] else ' (out of sync)'} | "
              f"{fmt(r['r_ours'])} | {fmt(r['r_loud'])} | {fmt(r['r_closed'])} | {r['mae_ours']:.4f} | "
              f"{r['mae_loud']:.4f} | {r['mae_closed']:.4f} | {r['lag_ours']:+d} | {r['lag_real']:+d} |")
    summary = {"title": title, "clips": [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)}
                                         for r in rows]}
    for label, subset in (("all clips", rows), (f"in-sync clips (sync >= {SYNC})", [r for r in rows if r["in_sync"]])):
        if not subset:
            continue
        true = np.concatenate([r["true"] for r in subset])
        entry = {"clips": len(subset), "frames": int(len(true))}
        for name in ("ours", "loud", "closed"):
            pred = np.concatenate([r[name] for r in subset])
            entry[f"r_{name}"] = pearson(pred, true)
            entry[f"mae_{name}"] = float(np.abs(pred - true).mean())
            rs = np.array([r[f"r_{name}"] for r in subset])
            entry[f"r_{name}_clip_mean"] = float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan")
        w = np.array([r["frames"] for r in subset], np.float64)[:, None]
        for who in ("ours", "real"):  # the lag of the frame-weighted mean correlation curve over the clips
            curve = (np.stack([r[f"curve_{who}"] for r in subset]) * w).sum(0) / w.sum()
            entry[f"lag_{who}_pooled"] = int(np.argmax(curve)) - MAX_LAG
            entry[f"lag_{who}_curve"] = [round(float(v), 3) for v in curve]
        print(f"| **{label}, pooled** | {entry['frames']} | | {fmt(entry['r_ours'])} | {fmt(entry['r_loud'])} | — | "
              f"{entry['mae_ours']:.4f} | {entry['mae_loud']:.4f} | {entry['mae_closed']:.4f} | | |")
        entry["std_ratio_ours"] = float(np.concatenate([r["ours"] for r in subset]).std() / max(true.std(), 1e-12))
        print(f"| {label}, mean of per-clip r (AV lag of the mean lag curve) | | | {fmt(entry['r_ours_clip_mean'])} | "
              f"{fmt(entry['r_loud_clip_mean'])} | — | | | | {entry['lag_ours_pooled']:+d} | "
              f"{entry['lag_real_pooled']:+d} |")
        print(f"| {label}: our opening's spread / the real one's (pooled std) | | | {entry['std_ratio_ours']:.2f} "
              "| | | | | | | |")
        summary[label] = entry
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a prepared dataset with audio features (format 2)")
    ap.add_argument("--model", help="speech model file (default: the shipped one)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--articulation", type=float, default=1.0, help="scale of our motion (speak --articulation)")
    args = ap.parse_args()

    model = load_speech_model(args.model)
    info = getattr(model, "info", {}) or {}
    holdout = info.get("holdout") or []
    trained = set(info.get("clips") or [])
    train = load_speech_data(args.data, "train", exclude=holdout)
    if trained:  # exactly the clips the model learnt from
        train.keys, train.features, train.aligned, train.neutrals = map(list, zip(*[
            (k, f, a, n) for k, f, a, n in zip(train.keys, train.features, train.aligned, train.neutrals)
            if k in trained]))
    val = load_speech_data(args.data, args.split)
    print(f"speech model: {args.model or 'shipped'} (trained on {len(trained) or '?'} clips; loudness baseline "
          f"fitted on {len(train.features)})")
    overlap = set(k.split("/")[0] for k in train.keys) & set(k.split("/")[0] for k in val.keys)
    if overlap and args.split != "train":
        print(f"warning: identities in both splits: {sorted(overlap)}", file=sys.stderr)

    # the loudness baseline, fitted on the training clips
    lx = np.concatenate([loudness(f) for f in train.features])
    ly = np.concatenate([mouth_opening(a) - mouth_opening(n) for a, n in zip(train.aligned, train.neutrals)])
    slope, intercept = np.polyfit(lx, ly, 1)

    groups = [(f"{args.split} split", val)]
    if holdout and args.split != "train":
        groups.append((f"identities held out of training ({', '.join(holdout)})",
                       load_speech_data(args.data, "train", identities=holdout)))
    report: dict = {"model": args.model or "shipped", "loudness_fit": [float(slope), float(intercept)], "groups": []}
    for title, data in groups:
        seen = sorted(set(data.keys) & trained)
        if seen:
            print(f"error: the model was trained on {len(seen)} clip(s) of the group '{title}' ({seen[:3]}...): "
                  "they cannot measure it", file=sys.stderr)
            return 2
        report["groups"].append(evaluate(title, data, model, slope, intercept, args.articulation))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
