"""``talkinghead serve``: the sub-command's arguments and its runner, for :mod:`talkinghead.cli` to register.

Gradio is imported only when the command runs, so the rest of the CLI neither waits for it nor needs it.
"""

from __future__ import annotations

import argparse
import errno
from dataclasses import replace

from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.web import Limits


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {port}")
    return port


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def add_serve_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve`` to the CLI's sub-commands; returns its parser."""
    d = Limits()
    p = sub.add_parser("serve", help="a web page for animating a portrait (local, offline)",
                       description="Serve a page where you upload a portrait and a driving video and get the "
                                   "animated video back. It listens on this machine only unless --host says "
                                   "otherwise; it uses no external service.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the page, which has no login)")
    p.add_argument("--port", type=_port, default=7860, help="port (default 7860)")
    p.add_argument("--model", help="model file, person file or training run (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--max-upload-mb", type=_positive_float, default=d.max_upload_mb,
                   help=f"largest accepted file in MB (default {d.max_upload_mb:g})")
    p.add_argument("--max-seconds", type=_positive_float, default=d.max_driving_seconds,
                   help=f"longest accepted driving video in seconds (default {d.max_driving_seconds:g})")
    p.add_argument("--queue-size", type=int, default=d.queue_size,
                   help=f"requests that may wait while one is animated (default {d.queue_size})")
    p.add_argument("--live-sessions", type=int, default=d.live_sessions,
                   help=f"visitors who may use the Live tab at once (default {d.live_sessions}; the next is told "
                        "the server is busy)")
    p.add_argument("--temp-dir", help="the app's temporary folder (default: <system temp>/talkinghead-web)")
    return p


def limits_from_args(args: argparse.Namespace) -> Limits:
    if args.queue_size < 1:
        raise InputError(f"--queue-size must be at least 1, got {args.queue_size}")
    if args.live_sessions < 1:
        raise InputError(f"--live-sessions must be at least 1, got {args.live_sessions}")
    return replace(Limits(), max_upload_mb=args.max_upload_mb, max_driving_seconds=args.max_seconds,
                   queue_size=args.queue_size, live_sessions=args.live_sessions)


def _check_port(host: str, port: int) -> None:
    """Fail with one line before any model is loaded when the address cannot be listened on."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself will
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is in use (another server?): choose another with --port") from None
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C); returns the exit code."""
    limits = limits_from_args(args)
    try:
        from talkinghead.web.app import serve
    except ImportError as exc:
        raise TalkingHeadError(f"the web page needs Gradio ({exc}); install it with: "
                               "pip install -r requirements.lock") from None
    _check_port(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"talkinghead: serving on http://{host}:{args.port} (Ctrl-C to stop)", flush=True)
    serve(host=args.host, port=args.port, model=args.model, limits=limits, device=args.device,
          temp_dir=args.temp_dir, block=True)
    return 0
