"""The ``talkinghead`` command: parses arguments, calls :mod:`talkinghead.api`, maps errors to exit codes.

Exit codes: 0 success, 2 bad input (one line on stderr; ``--debug`` shows the traceback), 1 anything else.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from talkinghead import __version__
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.evaluation.cli import add_evaluate_command, run_evaluate
from talkinghead.web.cli import add_serve_command, run_serve


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard expects i/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < N")
    return i, n


def _zoom(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v == 0 or 1 <= v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or a factor of 1 or more, got {text}")
    return v


def _distance(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or a positive distance, got {text}")
    return v


def _add_motion_limit_options(p: argparse.ArgumentParser) -> None:
    from talkinghead.inference.retarget import MAX_SHIFT, MAX_TURN, MAX_ZOOM

    p.add_argument("--max-zoom", type=_zoom, default=MAX_ZOOM, metavar="X",
                   help="relative motion: the head grows or shrinks by at most this factor from the photo's size "
                        "(default 1.1; a driver leaning towards the camera swells the face while hair and "
                        "shoulders stay; 0 = no limit)")
    p.add_argument("--max-shift", type=_distance, default=MAX_SHIFT, metavar="D",
                   help="relative motion: the face moves at most this many inter-ocular distances from where the "
                        "photo has it (default 0.5, eased in past half of it; the body and the picture's edges "
                        "stay, so a face moved further is crushed against them; 0 = no limit)")
    p.add_argument("--max-turn", type=_zoom, default=MAX_TURN, metavar="X",
                   help="relative motion: the face turns at most so far that either cheek looks this many times as "
                        "wide as in the photo (default 1.5; a photo turned away, driven towards the camera, "
                        "otherwise has its far cheek stretched; 0 = no limit)")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too; keep it short)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_face_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=_positive, help="side of the square face crop in pixels (default 256)")
    p.add_argument("--margin", type=float, help="crop side as a multiple of the face size (default 1.9)")
    p.add_argument("--face-index", type=int, help="which face to follow: 0 = largest (default), 1 = next, ...")
    p.add_argument("--detect-every", type=_positive, help="re-detect the face at least every N frames (default 25)")
    p.add_argument("--smoothing", type=float, help="landmark smoothing, One-Euro min cut-off in Hz; 0 = off")
    p.add_argument("--config", help="YAML file with settings (overridden by the options given here)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set tracker.upsample=1 (repeatable)")


def _face_overrides(args: argparse.Namespace) -> dict[str, object]:
    from talkinghead.config import parse_overrides

    over: dict[str, object] = parse_overrides(args.set)
    for name in ("size", "margin"):
        if getattr(args, name, None) is not None:
            over[name] = getattr(args, name)
    for name, key in (("face_index", "face_index"), ("detect_every", "detect_every"), ("smoothing", "smoothing")):
        if getattr(args, name, None) is not None:
            over[f"tracker.{key}"] = getattr(args, name)
    return over


def _add_source_face_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--face-index", type=int, default=0, metavar="N",
                   help="in a source photo with several faces, which one: 0 = the largest (default), 1 = next, ...")


def _add_driver_mouth_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-driver-mouth", action="store_true",
                   help="do not show the driving face's mouth interior (teeth, the dark of the mouth) where the "
                        "mouth opens wider than in the photo (default: shown, lit like the photo)")
    p.add_argument("--no-driver-gaze", action="store_true",
                   help="keep the photo's gaze: do not slide its irises as the driving face's eyes look about "
                        "(default: they follow)")
    _add_blinks_option(p)


def _add_blinks_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-full-blinks", action="store_true",
                   help="close the eyes only as far as the landmarks do in a blink (about half way); default: the "
                        "upper lids come down over the eyes as far as the driving face's do")


def _add_paste_back_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paste-back", action="store_true", help="blend the face back into the full source photo")
    p.add_argument("--max-side", type=int, default=1920, metavar="PX",
                   help="with --paste-back, scale photos larger than this down to it (default 1920; 0 = keep)")
    p.add_argument("--no-full-resolution", action="store_true",
                   help="upscale the model's 256² face to the photo's size instead of composing it there from the "
                        "photo's own pixels (faster, softer)")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """Device, backend and marking options of the commands that write a video (animate, speak)."""
    _add_source_face_option(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--no-watermark", action="store_true",
                   help="do not mark the video as synthetic (see README: Provenance); marking is the default")
    _add_credential_options(p)
    p.add_argument("--no-progress", action="store_true")


def _add_credential_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--consent", action="store_true",
                   help="declare that the person shown consented to the use of their likeness (recorded in the "
                        "Content Credentials; never assumed)")
    p.add_argument("--no-credentials", action="store_true",
                   help="do not sign a C2PA manifest (Content Credentials) into the output; signing is the default")
    p.add_argument("--sign-cert", metavar="PEM",
                   help="certificate chain to sign with (default: $TALKINGHEAD_SIGN_CERT, else a self-issued "
                        "per-installation certificate made on first use)")
    p.add_argument("--sign-key", metavar="PEM", help="private key of --sign-cert (default: $TALKINGHEAD_SIGN_KEY)")


def _credential_options(args: argparse.Namespace) -> dict[str, object]:
    if args.no_credentials and (args.sign_cert or args.sign_key or args.consent):
        raise InputError("--no-credentials writes no manifest: --consent/--sign-cert/--sign-key would be lost")
    if bool(args.sign_cert) != bool(args.sign_key):
        raise InputError("--sign-cert and --sign-key go together")
    if not args.no_credentials:  # a certificate that cannot sign fails now, before any compute
        from talkinghead.provenance.credentials import resolve_identity

        resolve_identity(args.sign_cert, args.sign_key)
    return {"credentials": not args.no_credentials, "consent": args.consent, "sign_cert": args.sign_cert,
            "sign_key": args.sign_key}


def _model_file(model: str | None) -> Path | None:
    """The model file whose hash the manifest records (None for a training-run folder)."""
    if model is None:
        from talkinghead.assets import default_model_path

        return default_model_path()
    return Path(model) if Path(model).is_file() else None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="talkinghead", description="Few-shot neural talking heads.")
    parser.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("prepare", help="raw videos/photos → training dataset",
                       description="Track faces in videos (identity/.../clip.mp4 folders or CSV path,identity "
                                   "manifests) and write a dataset of face crops with landmarks.")
    p.add_argument("src", nargs="+", help="folders, CSV manifests (path,identity[,split]) or files")
    p.add_argument("--out", required=True, help="dataset folder (created; re-running resumes)")
    p.add_argument("--workers", type=_positive, help="parallel processes (default 2)")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="prepare only part i of N (for several machines)")
    p.add_argument("--stride", type=_positive, help="keep every N-th frame (default 1)")
    p.add_argument("--max-frames", type=int, help="keep at most N frames per clip, evenly spaced (default: all)")
    p.add_argument("--min-frames", type=_positive, help="skip clips with fewer usable frames (default 16)")
    p.add_argument("--no-progress", action="store_true")
    _add_face_options(p)

    p = sub.add_parser("sketch", help="write the landmark-sketch video of a video or photo")
    p.add_argument("src", help="a video or an image")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--no-progress", action="store_true")
    _add_face_options(p)

    p = sub.add_parser("train", help="meta-learn the embedder, generator and discriminator on a prepared dataset",
                       description="Meta-learning (Zakharov et al. 2019, §3.2). Under torchrun it runs "
                                   "DistributedDataParallel over all processes.")
    p.add_argument("--data", required=True, help="a dataset written by `talkinghead prepare`")
    p.add_argument("--out", required=True, help="run folder: checkpoints, samples, TensorBoard logs")
    p.add_argument("--preset", default="warp", help="warp (the default: warp-and-refine at 256²), or the paper's synthesis generator: tiny (64²), small (128²), paper (256²)")
    p.add_argument("--steps", type=_positive, help="train until this step (default from the preset)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=_positive)
    p.add_argument("--init", metavar="MODEL",
                   help="start from this model's weights (a model file, checkpoint or run of the same architecture; "
                        "e.g. the shipped one to train it further on other data), at step 0 with a fresh optimizer")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="stop after M minutes of training, with a checkpoint (--resume goes on from it)")
    p.add_argument("--config", help="YAML file with settings (overridden by the options given here)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set optim.lr_g=1e-4 --set model.width=16 (repeatable)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("animate", help="animate a portrait with the face motion of a driving video")
    p.add_argument("--source", nargs="+", required=True, metavar="PHOTO",
                   help="photo(s) of the person (or a video: --shots frames are picked from it)")
    p.add_argument("--driving", required=True, help="driving video (its audio is kept)")
    p.add_argument("--driving-face-index", type=int, default=0, metavar="N",
                   help="in a driving video with several faces, which one to follow: 0 = the largest (default), "
                        "1 = next, ...")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--model", help="model file, person file (from `finetune`) or training run (default: shipped)")
    p.add_argument("--finetune-steps", type=int, default=0, help="fine-tune on the sources first (0 = feed-forward)")
    p.add_argument("--shots", type=_positive, default=8, help="frames to take from a source video (default 8)")
    motion = p.add_mutually_exclusive_group()
    motion.add_argument("--relative", dest="relative", action="store_true", default=True,
                        help="transfer the driver's motion, keep the source's face shape (default)")
    motion.add_argument("--absolute", dest="relative", action="store_false", help="use the driver's landmarks as they are")
    p.add_argument("--reference", choices=["auto", "first"], default="auto",
                   help="relative motion's neutral driving frame: auto = the one of the first 2 s most like the "
                        "source in pose and expression (default), first = the first frame with a face")
    _add_motion_limit_options(p)
    _add_paste_back_options(p)
    p.add_argument("--side-by-side", action="store_true", help="driving face | result")
    _add_driver_mouth_option(p)
    p.add_argument("--frames", metavar="DIR", help="also write every frame as PNG into DIR")
    p.add_argument("--size", type=_positive, default=256, help="output face size in pixels (default 256)")
    _add_output_options(p)

    p = sub.add_parser("speak", help="make a portrait say an audio file or a text (lip-synced, with head motion)",
                       description="Audio (any FFmpeg-readable file) or text (spoken offline by eSpeak NG) → the "
                                   "portrait saying it: jaw and lips from the speech model (for text, closed on the "
                                   "spoken p, b, m), head motion, blinks and "
                                   "glances from a bank of real motion; the speech is the video's sound track.")
    p.add_argument("--source", nargs="+", metavar="PHOTO", help="photo(s) of the person")
    said = p.add_mutually_exclusive_group()
    said.add_argument("--audio", metavar="FILE", help="speech to lip-sync (wav, mp3, m4a, a video's sound, ...)")
    said.add_argument("--text", help="text to say (eSpeak NG, offline)")
    p.add_argument("--out", help="output .mp4")
    p.add_argument("--voice", help="eSpeak NG voice variant, e.g. m1, m3, f1, f3, klatt, whisper (--list-voices), or LANGUAGE+VARIANT (en-us+f3)")
    p.add_argument("--language", default="en", help="eSpeak NG language, e.g. en, en-us, fr, de, es (default en)")
    p.add_argument("--rate", type=int, default=160, help="speaking rate in words per minute for --text (default 160)")
    p.add_argument("--list-voices", action="store_true", help="print eSpeak NG's languages and voices and exit")
    p.add_argument("--max-seconds", type=float, default=60.0, help="refuse longer speech (default 60)")
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate (default 25)")
    p.add_argument("--head-motion", type=float, default=1.0, help="scale of the head motion, blinks and glances (0 = still, eyes fixed)")
    p.add_argument("--seed", type=int, default=0, help="which real head motion to use (default 0)")
    p.add_argument("--no-glances", action="store_true",
                   help="keep the photo's gaze: do not slide its irises as the bank's eyes look about")
    _add_blinks_option(p)
    p.add_argument("--articulation", type=float, default=1.0,
                   help="scale of the jaw and lip motion (default 1; 1.5 = livelier, less like real speakers)")
    p.add_argument("--no-lip-closures", action="store_true",
                   help="with --text, move the lips from the audio model alone (no closures on the spoken p, b, m)")
    p.add_argument("--keep-open-mouth", action="store_true",
                   help="keep a photo's open mouth (e.g. a smile showing teeth) as the resting mouth; by default it "
                        "is closed to rest and the speech opens it")
    p.add_argument("--no-mouth-interior", action="store_true",
                   help="where the mouth opens wider than in the photo, leave the model's stretched lips instead of "
                        "showing teeth and the dark of a mouth (the bundled astronaut photo's, lit like the photo)")
    p.add_argument("--speech-model", help="speech model file (default: the shipped one; see train-speech)")
    p.add_argument("--model", help="model file, person file (from `finetune`) or training run (default: shipped)")
    p.add_argument("--finetune-steps", type=int, default=0, help="fine-tune on the sources first (0 = feed-forward)")
    p.add_argument("--shots", type=_positive, default=8, help="frames to take from a source video (default 8)")
    _add_paste_back_options(p)
    p.add_argument("--size", type=_positive, default=256, help="output face size in pixels (default 256)")
    _add_output_options(p)

    p = sub.add_parser("train-speech", help="train the speech model (audio → jaw and lip motion) on a prepared dataset",
                       description="Fits the audio-to-motion model on the train split's clips with sound and "
                                   "extracts the idle-motion bank (head motion, blinks, gaze) from its landmarks and frames.")
    p.add_argument("--data", required=True, help="a dataset written by `talkinghead prepare` (format 2: with audio)")
    p.add_argument("--out", default="runs/speech", help="folder for speech.safetensors and idle_motion.npz")
    p.add_argument("--steps", type=_positive, help="training steps (default 3000)")
    p.add_argument("--threads", type=_positive, help="CPU threads (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of SpeechTrainConfig, e.g. --set model.width=64 (repeatable)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("finetune", help="fine-tune the model on photos of one person → a person file for animate")
    p.add_argument("--source", nargs="+", required=True, metavar="PHOTO|VIDEO")
    p.add_argument("--out", required=True, help="person file to write (.safetensors)")
    p.add_argument("--model", help="meta-learned model (default: shipped)")
    p.add_argument("--steps", type=int, help="fine-tuning steps (default: by the number of source frames)")
    p.add_argument("--shots", type=_positive, default=8, help="frames to take from a source video (default 8)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_source_face_option(p)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("verify", help="check whether videos or images are marked synthetic (C2PA manifest, watermark)",
                       description="Reads each file's C2PA manifest (Content Credentials) and talkinghead's "
                                   "watermark. Exit code: 0 all marked, 1 some not marked, 2 some unreadable.")
    p.add_argument("files", nargs="+", metavar="FILE", help="videos, images, or folders of them (e.g. --frames DIR)")
    p.add_argument("--json", action="store_true", help="one JSON object per file, with everything found")

    p = sub.add_parser("live", help="animate a portrait in real time from a camera (or a video played like one)",
                       description="Animate a portrait live from a camera, or from a video paced at its real frame "
                                   "rate as if it were a camera. Frames that arrive while one is being animated "
                                   "are dropped (counted). Prints fps, latency p50/p95 and dropped frames at the "
                                   "end; Ctrl-C stops, with the recording finalised.")
    p.add_argument("--source", nargs="+", required=True, metavar="PHOTO", help="photo(s) of the person to animate")
    live_in = p.add_mutually_exclusive_group()
    live_in.add_argument("--camera", type=int, metavar="INDEX", help="camera to read (default 0)")
    live_in.add_argument("--driving", metavar="VIDEO", help="a video played at its frame rate instead of a camera")
    p.add_argument("--driving-face-index", type=int, default=0, metavar="N",
                   help="with several faces in view, which one to follow: 0 = the largest (default), 1 = next, ...")
    p.add_argument("--out", help="record the animated stream to this .mp4 (marked and signed like every output)")
    p.add_argument("--show", action="store_true", help="show the result in a window (needs a display)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C or the "
                                                  "video ends)")
    p.add_argument("--model", help="model file, person file or training run (default: shipped)")
    p.add_argument("--absolute", dest="relative", action="store_false", default=True,
                   help="use the driver's landmarks as they are (default: relative motion)")
    _add_motion_limit_options(p)
    _add_paste_back_options(p)
    p.add_argument("--side-by-side", action="store_true", help="driving face | result")
    _add_driver_mouth_option(p)
    p.add_argument("--size", type=_positive, default=256, help="output face size in pixels (default 256)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--no-watermark", action="store_true",
                   help="do not mark the frames as synthetic (see README: Provenance); marking is the default")
    _add_credential_options(p)
    _add_source_face_option(p)

    add_evaluate_command(sub)
    add_serve_command(sub)

    p = sub.add_parser("demo", help="animate the bundled example (scikit-image's astronaut) with the shipped model")
    p.add_argument("--out", default="demo.mp4", help="output .mp4 (default demo.mp4)")
    p.add_argument("--model", help="model file (default: the shipped one)")
    p.add_argument("--no-progress", action="store_true")
    return parser


def _cmd_prepare(args: argparse.Namespace) -> int:
    from talkinghead import api

    over = _face_overrides(args)
    for name in ("workers", "stride", "max_frames", "min_frames"):
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    summary = api.prepare(args.src, args.out, config_file=args.config, shard=args.shard,
                          progress=not args.no_progress, **over)
    print(
        f"prepared {summary.clips_kept} clip(s) of {summary.clips_total} "
        f"({summary.clips_resumed} from an earlier run), skipped {summary.clips_skipped}, errors {summary.clips_error}; "
        f"{summary.frames_out} frames written, {summary.frames_no_face} without a face; "
        f"{summary.frames_per_second:.1f} frames/s; {summary.bytes_on_disk / 2**20:.1f} MiB in {args.out}"
    )
    if summary.errors:
        print(f"talkinghead: {len(summary.errors)} input(s) could not be used (see above and the report)",
              file=sys.stderr)
        return 2
    return 0


def _cmd_sketch(args: argparse.Namespace) -> int:
    from talkinghead import api

    api.check_output_path(args.out, [args.src], video=True)
    stats = api.sketch(args.src, args.out, config_file=args.config, progress=not args.no_progress,
                       **_face_overrides(args))
    print(f"wrote {args.out}: {stats.frames} frames ({stats.frames_no_face} without a face), {stats.fps:.1f} frames/s")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Animate the astronaut (public domain) with the shipped model and the packaged GRID motion track."""
    from talkinghead import api
    from talkinghead.assets import driving_motion
    from talkinghead.data.examples import astronaut
    from talkinghead.inference.animate import AnimateOptions, Animator

    api.check_output_path(args.out, video=True)
    anim = Animator(args.model, device="auto")
    anim.set_source([astronaut()])
    track, fps = driving_motion()
    result = anim.animate((track, fps), args.out, AnimateOptions(side_by_side=True, progress=not args.no_progress,
                                                                model_file=_model_file(args.model)))
    print(f"wrote {Path(args.out).resolve()}: {result.frames} frames at {fps:.0f} fps "
          f"(driving sketch | astronaut), {result.frames_per_second:.1f} frames/s, watermark {result.payload}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from talkinghead import api
    from talkinghead.config import parse_overrides

    over = parse_overrides(args.set)
    for name, key in (("steps", "steps"), ("device", "device"), ("batch_size", "batch_size"), ("init", "init"),
                      ("max_minutes", "max_minutes")):
        if getattr(args, name) is not None:
            over[key] = getattr(args, name)
    result = api.train(args.data, args.out, preset=args.preset, config_file=args.config, resume=args.resume,
                       progress=not args.no_progress, **over)
    if result is not None:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in result.losses.items() if k in ("g_total", "content", "d_hinge"))
        print(f"trained {result.steps_done} step(s) to step {result.last_step} ({result.images_per_second:.1f} "
              f"images/s); {losses}; checkpoint {result.checkpoint}")
    return 0


def _cmd_animate(args: argparse.Namespace) -> int:
    from talkinghead import api

    credentials = _credential_options(args)
    api.check_output_path(args.out, [*args.source, args.driving], video=True)
    if args.frames:
        api.check_output_path(Path(args.frames) / "000000.png", [*args.source, args.driving])
    result = api.animate(args.source, args.driving, args.out, model=args.model, finetune_steps=args.finetune_steps,
                         shots=args.shots, relative=args.relative, reference=args.reference,
                         max_zoom=args.max_zoom, max_turn=args.max_turn, max_shift=args.max_shift,
                         paste_back=args.paste_back, max_side=args.max_side, side_by_side=args.side_by_side,
                         frames_dir=args.frames, output_size=args.size, full_resolution=not args.no_full_resolution,
                         driver_mouth=not args.no_driver_mouth, driver_gaze=not args.no_driver_gaze,
                         full_blinks=not args.no_full_blinks,
                         device=args.device, backend=args.backend,
                         watermark=not args.no_watermark,
                         progress=not args.no_progress, model_file=_model_file(args.model), face_index=args.face_index,
                         driving_face_index=args.driving_face_index, **credentials)
    lost = f", {result.frames_without_face} without a driving face (held)" if result.frames_without_face else ""
    ft = f", fine-tuning {result.finetune_seconds:.1f} s" if result.finetune_seconds else ""
    print(f"wrote {result.path}: {result.frames} frame{'' if result.frames == 1 else 's'} at {result.fps:.2f} fps{lost}; "
          f"{result.frames_per_second:.1f} frames/s{ft}")
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    from talkinghead import api
    from talkinghead.inference import live
    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.io.video import VideoReader
    from talkinghead.provenance.marking import marking

    # Ctrl-C (SIGINT) stops the session, even when the shell started us with SIGINT ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.seconds is not None and not args.seconds > 0:
        raise InputError(f"--seconds must be > 0, got {args.seconds:g}")
    credentials = _credential_options(args) if args.out else {"credentials": False}
    if args.out:
        api.check_output_path(args.out, [*args.source, *([args.driving] if args.driving else [])], video=True)
    closers = []
    try:
        if args.driving:  # a video played like a camera, at its own frame rate
            reader = VideoReader(args.driving)
            closers.append(reader.close)
            fps = reader.info.fps
            frames = live.paced(reader, fps)
        else:
            camera = live.open_camera(0 if args.camera is None else args.camera)
            closers.append(camera.close)
            fps, frames = camera.fps, camera
        window = live.Window() if args.show else None
        live.live_threads()
        anim = Animator(args.model, device=args.device, backend=args.backend,
                        face=api.source_face_config(args.face_index))
        anim.set_source(args.source, progress=False)
        marker = marking(not args.no_watermark, bool(credentials.pop("credentials")), model=anim.bundle,
                         model_file=_model_file(args.model), **credentials)  # type: ignore[arg-type]
        recorder = live.Recorder(args.out, fps, marker) if args.out else None
        options = AnimateOptions(relative=args.relative, max_zoom=args.max_zoom, max_turn=args.max_turn,
                                 max_shift=args.max_shift, paste_back=args.paste_back,
                                 max_side=args.max_side, side_by_side=args.side_by_side, output_size=args.size,
                                 full_resolution=not args.no_full_resolution,
                                 driver_mouth=not args.no_driver_mouth, driver_gaze=not args.no_driver_gaze,
                                 full_blinks=not args.no_full_blinks, driving_face_index=args.driving_face_index, progress=False)
        print(f"talkinghead: live from {args.driving or f'camera {camera.index}'} at {fps:.1f} fps "
              "(Ctrl-C to stop)", file=sys.stderr, flush=True)
        result = live.run_session(anim.stream(frames, options, fps=fps, mark=marker), recorder, window, args.seconds)
    finally:
        for close in closers:
            close()
    print(f"live: {result.stats.line()}" + (" (stopped by Ctrl-C)" if result.interrupted else ""))
    if result.recording is not None:
        print(f"wrote {result.recording}: {result.recorded_frames} frames at {fps:.2f} fps"
              + (f", watermark {marker.payload_text}" if marker.payload_text else ""))
    return 0


def _cmd_speak(args: argparse.Namespace) -> int:
    from talkinghead import api

    if args.list_voices:
        from talkinghead.speech.tts import languages, voices

        print("languages: " + " ".join(languages()))
        print("voices: " + " ".join(voices()))
        return 0
    if not args.source or not args.out:
        raise InputError("speak needs --source PHOTO and --out OUT.mp4")
    if args.audio is None and args.text is None:
        raise InputError("nothing to say: give --audio FILE or --text \"...\"")
    if not 0.0 <= args.articulation <= 3.0:
        raise InputError(f"--articulation {args.articulation:g} is out of range (0..3)")
    credentials = _credential_options(args)
    result = api.speak(args.source, args.out, audio=args.audio, text=args.text, model=args.model,
                       speech_model=args.speech_model, finetune_steps=args.finetune_steps, shots=args.shots,
                       language=args.language, voice=args.voice, words_per_minute=args.rate, fps=args.fps,
                       max_seconds=args.max_seconds, head_motion=args.head_motion, seed=args.seed,
                       articulation=args.articulation, lip_closures=not args.no_lip_closures,
                       rest_mouth=not args.keep_open_mouth, device=args.device,
                       backend=args.backend, paste_back=args.paste_back, max_side=args.max_side,
                       output_size=args.size, full_resolution=not args.no_full_resolution,
                       watermark=not args.no_watermark, progress=not args.no_progress,
                       model_file=_model_file(args.model), face_index=args.face_index,
                       driver_gaze=not args.no_glances, driver_mouth=not args.no_mouth_interior,
                       full_blinks=not args.no_full_blinks, **credentials)
    tts = f" (TTS {result.tts_seconds:.1f} s)" if args.text is not None else ""
    print(f"wrote {result.path}: {result.frames} frames at {result.fps:g} fps, {result.audio_seconds:.1f} s of speech; "
          f"{result.seconds:.1f} s of compute{tts}, {result.seconds_per_output_second:.2f} s per second of video")
    return 0


def _cmd_train_speech(args: argparse.Namespace) -> int:
    from talkinghead.config import load_config, parse_overrides
    from talkinghead.speech.train import SpeechTrainConfig, train_speech

    over = parse_overrides(args.set)
    for name in ("steps", "threads"):
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    cfg = load_config(SpeechTrainConfig, overrides=over)
    api_out = Path(args.out)
    if api_out.exists() and not api_out.is_dir():
        raise InputError(f"--out {args.out} is a file; give a folder")
    result = train_speech(args.data, api_out, cfg, progress=not args.no_progress,
                          log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {result.model_path} ({result.parameters} parameters; {result.steps} steps on {result.clips} clips, "
          f"{result.frames} frames, {result.seconds:.0f} s; loss {result.final_loss:.4f}) and {result.bank_path} "
          f"({result.bank_clips} clips, {result.bank_frames} frames of head motion)")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from talkinghead import api

    api.check_output_path(args.out, args.source)
    info = api.finetune(args.source, args.out, model=args.model, steps=args.steps, shots=args.shots,
                        device=args.device, progress=not args.no_progress, face_index=args.face_index)
    print(f"wrote {args.out}: fine-tuned {info['steps']} steps on {info['sources']} source frame(s) "
          f"in {info['seconds']:.1f} s")
    return 0


def _verify_targets(paths: list[str]) -> list[str | InputError]:
    """The files to check: each file as given, each folder's images and videos (sorted; not its subfolders)."""
    from talkinghead.io.images import IMAGE_EXTENSIONS
    from talkinghead.io.video import VIDEO_EXTENSIONS

    out: list[str | InputError] = []
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            out.append(path)
            continue
        media = sorted(str(f) for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                       and f.suffix.lower() in {*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS, ".gif"})
        out.extend(media or [InputError(f"{path}: a folder with no image or video to check")])
    return out


def _cmd_verify(args: argparse.Namespace) -> int:
    import json

    from talkinghead.provenance.verify import verify_file

    worst = 0
    for path in _verify_targets(args.files):
        if isinstance(path, InputError):
            print(f"talkinghead: error: {path}", file=sys.stderr)
            worst = 2
            continue
        try:
            r = verify_file(path)
        except InputError as exc:
            print(f"talkinghead: error: {exc}", file=sys.stderr)
            worst = 2
            continue
        if args.json:
            print(json.dumps({"file": path, "synthetic": r.synthetic, "verdict": r.verdict,
                              "manifest_marked": r.manifest_marked, "watermarked": r.watermarked,
                              "tagged": r.tagged, "payload": str(r.payload) if r.payload else None,
                              "confidence": round(r.confidence, 4), "reason": r.reason, "tags": r.tags,
                              "credentials": r.credentials.to_dict() if r.credentials else None}, default=str))
        else:
            print(f"{path}: {'SYNTHETIC' if r.synthetic else 'not marked'} — {r.verdict}")
            for line in r.details:
                print(f"  {line}")
        if not r.synthetic:
            worst = max(worst, 1)
    return worst


COMMANDS = {"verify": _cmd_verify, "serve": run_serve, "evaluate": run_evaluate, "prepare": _cmd_prepare, "sketch": _cmd_sketch, "train": _cmd_train, "animate": _cmd_animate,
            "finetune": _cmd_finetune, "demo": _cmd_demo, "speak": _cmd_speak, "train-speech": _cmd_train_speech, "live": _cmd_live}


def _notes_to_stderr() -> None:
    """The library's notices (``logging`` warnings of the ``talkinghead`` loggers) as one plain line each."""
    import logging

    logger = logging.getLogger("talkinghead")
    if not any(getattr(h, "_talkinghead_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("talkinghead: note: %(message)s"))
        handler._talkinghead_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _notes_to_stderr()
    try:
        return COMMANDS[args.command](args)
    except TalkingHeadError as exc:
        if args.debug:
            raise
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("talkinghead: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"talkinghead: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
