"""Writing an evaluation: ``report.md`` (tables), ``metrics.json`` (every number), grids and plots."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from talkinghead.io.atomic import atomic_write_text

if TYPE_CHECKING:
    from talkinghead.evaluation.protocol import EvaluationResult

GRID_CELL = 128
"""Side of one image in a grid, pixels."""

_LABELS = {"ssim": "SSIM ↑", "psnr": "PSNR dB ↑", "csim": "CSIM ↑", "nme": "NME ↓", "sharpness": "sharpness ratio (1 = real)",
           "face_rate": "face found ↑"}


def save_grid(path: Path, source: np.ndarray, driving: np.ndarray, real: np.ndarray,
              methods: dict[str, np.ndarray], rows: int = 4) -> Path:
    """PNG of up to ``rows`` frames: source | driving | real | one column per method (images ``(N, H, W, 3) uint8``)."""
    n = min(rows, len(driving))
    pick = np.unique(np.round(np.linspace(0, len(driving) - 1, n)).astype(int))
    cols = ["source", "driving", "real", *methods]
    c = GRID_CELL
    grid = np.full((24 + len(pick) * c, len(cols) * c, 3), 255, np.uint8)
    for j, name in enumerate(cols):
        cv2.putText(grid, name, (j * c + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for r, i in enumerate(pick):
        cells = [source, driving[i], real[i], *(m[i] for m in methods.values())]
        for j, img in enumerate(cells):
            grid[24 + r * c : 24 + (r + 1) * c, j * c : (j + 1) * c] = cv2.resize(img, (c, c), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid[:, :, ::-1])
    return path


def _fmt(values: list[float]) -> str:
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if not len(a):
        return "–"
    return f"{a.mean():.3f} ± {a.std():.3f}" if len(a) > 1 else f"{a.mean():.3f}"


def summarise(records: list[dict[str, Any]]) -> dict[tuple[str, int, str], dict[str, list[float]]]:
    """``(task, shots, method) → metric → per-identity values``."""
    out: dict[tuple[str, int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for k, v in r.items():
            if k in _LABELS:
                out[(r["task"], r["shots"], r["method"])][k].append(v)
    return out


def tables(result: EvaluationResult) -> str:
    """Markdown: one table per task × mode × shots, baselines as rows, mean ± std over identities."""
    from talkinghead.evaluation.protocol import CROSS_METRICS, SELF_METRICS

    cfg = result.config
    summ = summarise(result.records)
    lines: list[str] = []
    for task, metrics in (("self", SELF_METRICS), ("cross", CROSS_METRICS)):
        if not any(r["task"] == task for r in result.records):
            continue
        title = "Self-reenactment (ground truth = the real driving frame)" if task == "self" else \
            "Cross-reenactment (another identity drives; relative landmarks; no ground truth)"
        lines += [f"## {title}", ""]
        for mode in cfg["modes"]:
            for t in cfg["shots"]:
                steps = f", {cfg['finetune_steps'][str(t)]} fine-tuning steps" if mode == "ft" else ""
                n = len({r["identity"] for r in result.records if r["task"] == task and r["shots"] == t})
                lines += [f"### {mode.upper()}, T = {t}{steps} ({n} identities)", "",
                          "| method | " + " | ".join(_LABELS[m] for m in metrics) + " |",
                          "|---|" + "---|" * len(metrics)]
                for method in [*cfg["baselines"], f"ours-{mode}"]:
                    vals = summ.get((task, t, method))
                    if vals is None:
                        continue
                    lines.append(f"| {method} | " + " | ".join(_fmt(vals[m]) for m in metrics) + " |")
                lines.append("")
    return "\n".join(lines + per_identity(result))


def per_identity(result: EvaluationResult) -> list[str]:
    """Markdown lines: self-reenactment SSIM / PSNR of every identity and method, per mode and T (a mean over
    identities can lean on one: a near-still clip scores PSNR in the 40s and 50s)."""
    cfg = result.config
    methods_all = [*cfg["baselines"], *(f"ours-{m}" for m in cfg["modes"])]
    cell: dict[tuple[str, int, str], str] = {}
    for r in result.records:
        if r["task"] == "self":
            ssim, psnr = r.get("ssim"), r.get("psnr")
            ok = all(v is not None and math.isfinite(v) for v in (ssim, psnr))
            cell[(r["identity"], r["shots"], r["method"])] = f"{ssim:.3f} / {psnr:.2f}" if ok else "–"
    if not cell:
        return []
    names = sorted({k[0] for k in cell})
    lines = ["## Per identity (self-reenactment SSIM / PSNR dB)", ""]
    for t in cfg["shots"]:
        methods = [m for m in methods_all if any((n, t, m) in cell for n in names)]
        lines += [f"### T = {t}", "", "| identity | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for n in names:
            lines.append(f"| {n} | " + " | ".join(cell.get((n, t, m), "–") for m in methods) + " |")
        lines.append("")
    return lines


def _plots(result: EvaluationResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from talkinghead.evaluation.protocol import SELF_METRICS

    summ = summarise(result.records)
    methods = sorted({r["method"] for r in result.records if r["task"] == "self"})
    shots = result.config["shots"]
    paths = []
    for metric in SELF_METRICS:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for method in methods:
            xs, ys, es = [], [], []
            for t in shots:
                v = np.asarray([x for x in summ.get(("self", t, method), {}).get(metric, []) if math.isfinite(x)])
                if len(v):
                    xs.append(t)
                    ys.append(v.mean())
                    es.append(v.std())
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(shots, [str(t) for t in shots])
        ax.set_xlabel("source frames T")
        ax.set_ylabel(_LABELS[metric])
        ax.set_title(f"self-reenactment: {metric}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / "plots" / f"{metric}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (np.floating, np.integer)):
        return _jsonable(v.item())
    return v


def write_report(result: EvaluationResult, out: Path) -> dict[str, Path]:
    """Write ``report.md``, ``metrics.json`` and ``plots/<metric>.png`` under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    plots = _plots(result, out)
    records = [{k: _jsonable(v) for k, v in r.items()} for r in result.records]
    metrics = out / "metrics.json"
    atomic_write_text(metrics, json.dumps({"config": cfg, "records": records}, indent=1, default=str))
    head = [
        "# talkinghead evaluation", "",
        f"- model: `{cfg['model']}` ({cfg['model_resolution']}², sha256 `{(cfg['model_sha256'] or '-')[:16]}`)",
        f"- data: `{cfg['data']}` split `{cfg['split']}`, {len(cfg['identities'])} identities, "
        f"{cfg['frames_per_identity']} driving frames each, seed {cfg['seed']}, {cfg.get('seconds', 0)} s",
        "- metrics at 256² (model output upscaled). SSIM/PSNR vs the real driving frame "
        + ("(from the source's own clip as it is, from another clip aligned like the target); "
           if cfg.get("align", "face") == "auto" else "aligned like the target (`--align face`); ") +
        "CSIM = cosine of dlib's face-recognition embeddings (not used in training); NME = landmarks *detected* on "
        "the image vs the target landmarks / outer-eye distance (frames with no detected face are left out of "
        "NME and counted in 'face found'); sharpness = Laplacian variance ratio to the real frame.",
        "- `static` = the source crop unchanged; `warp` = piecewise-affine warp of the source to the target landmarks "
        "(with several sources, both use the one nearest the target in expression and pose).",
        "- mean ± std over identities (each identity: mean over its frames).", "",
    ]
    report = out / "report.md"
    grids = sorted((out / "grids").glob("*.png")) if (out / "grids").is_dir() else []
    tail = ["## Figures", "", *[f"![{p.stem}](plots/{p.name})" for p in plots], "",
            *[f"- grid: [grids/{g.name}](grids/{g.name})" for g in grids], ""]
    atomic_write_text(report, "\n".join(head) + tables(result) + "\n" + "\n".join(tail))
    return {"report": report, "metrics": metrics, **{f"plot_{p.stem}": p for p in plots}}
