"""``talkinghead evaluate``: the evaluation protocol from the command line (wired into ``talkinghead.cli``)."""

from __future__ import annotations

import argparse
from typing import Any

from talkinghead.errors import InputError


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{what} must be positive integers, got {text!r}")
    return values


def _names(text: str, allowed: tuple[str, ...], what: str, allow_empty: bool = False) -> list[str]:
    values = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or (not values and not allow_empty):
        raise InputError(f"{what}: unknown {', '.join(bad) or 'empty list'} (choose from {', '.join(allowed)})")
    return values


def add_evaluate_command(sub: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to an argparse ``sub``-parsers object; returns its parser."""
    p = sub.add_parser("evaluate", help="self/cross-reenactment metrics + baselines on a prepared dataset → report",
                       description="The paper's protocol: SSIM, PSNR, CSIM, landmark NME and sharpness against "
                                   "the static-source and piecewise-affine-warp baselines.")
    p.add_argument("--model", help="model file, checkpoint or training run (default: the shipped model)")
    p.add_argument("--data", required=True, help="prepared dataset folder (from `talkinghead prepare`)")
    p.add_argument("--split", default="val",
                   help="the clips of this split (val, train, test or any name a CSV manifest gave), or all")
    p.add_argument("--shots", default="1,8", help="numbers of source frames T, comma-separated (default 1,8)")
    p.add_argument("--mode", default="ff,ft", help="ff (feed-forward) and/or ft (fine-tuned) (default ff,ft)")
    p.add_argument("--baselines", default="static,warp", help="static and/or warp (default both; '' for none)")
    p.add_argument("--max-identities", type=int, help="evaluate at most this many identities (sorted by name)")
    p.add_argument("--frames-per-identity", type=int, default=16, help="driving frames per identity (default 16)")
    p.add_argument("--finetune-steps", type=int, help="fine-tuning steps of the ft mode (default: by T)")
    p.add_argument("--align", choices=("auto", "face"), default="auto",
                   help="self-reenactment's driving frames: auto = a clip of the source's own as it is, another clip "
                        "aligned onto the source by the face (default); face = always aligned by the face (the "
                        "protocol before 2026-11-29)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", required=True, help="report folder (report.md, metrics.json, grids/, plots/)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_evaluate)
    return p


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``evaluate`` from parsed arguments; prints the report's tables. Bad input raises :class:`InputError`."""
    from talkinghead.evaluation.protocol import MODES, evaluate
    from talkinghead.evaluation.report import tables

    shots = _int_list(args.shots, "--shots")
    modes = _names(args.mode, MODES, "--mode")
    baselines = _names(args.baselines, ("static", "warp"), "--baselines", allow_empty=True)
    if args.max_identities is not None and args.max_identities < 1:
        raise InputError("--max-identities must be positive")
    if args.frames_per_identity < 1:
        raise InputError("--frames-per-identity must be positive")
    if args.finetune_steps is not None and args.finetune_steps < 1:
        raise InputError("--finetune-steps must be positive")
    result = evaluate(args.model, args.data, split=args.split, shots=shots, modes=modes, baselines=baselines,
                      max_identities=args.max_identities, frames_per_identity=args.frames_per_identity,
                      finetune_steps=args.finetune_steps, out_dir=args.out, seed=args.seed,
                      progress=not args.no_progress, device=args.device, align=args.align)
    print(tables(result))
    print(f"wrote {result.out_dir / 'report.md'} and metrics.json ({result.seconds:.1f} s)")
    return 0
