"""The WebRTC alternative for the Live tab, measured the same way as the Gradio path (benchmarks/live_latency.py):
Chromium's fake camera → WebRTC (aiortc on the server, loopback, no STUN/TURN) → the same LiveRenderer → WebRTC
back to the page. Prints figures; asserts nothing. Needs aiortc, which talkinghead does not depend on:

    pip install --target /tmp/rtc aiortc==1.16.0
    RTC_PATH=/tmp/rtc python benchmarks/live_transport_webrtc.py --seconds 20

Timestamps carried through: the page draws each camera frame onto a canvas with its capture time (Date.now())
as 40 black/white blocks along the top, and sends the canvas as its video track; the server reads the stamp,
animates the frame and writes the same stamp onto the output (2 rows of 20 blocks); the page reads it back from
every frame it receives (requestVideoFrameCallback). Latency: browser capture → frame received and decoded.
Stale frames are dropped on the server the way LiveStream does (only the newest waiting frame is animated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
if os.environ.get("RTC_PATH"):
    sys.path.append(os.environ["RTC_PATH"])  # after the venv: its own av/cryptography stay in charge

from live_latency import FPS, driving_clip  # noqa: E402

from talkinghead.data.examples import astronaut  # noqa: E402
from talkinghead.inference import live  # noqa: E402
from talkinghead.inference.animate import AnimateOptions, Animator  # noqa: E402

IN_BLOCK, OUT_BLOCK, BITS = 16, 12, 40


def read_stamp(img: np.ndarray, block: int, per_row: int) -> int:
    v = 0
    for i in range(BITS):
        y, x = (i // per_row) * block + block // 2, (i % per_row) * block + block // 2
        v |= int(img[y, x].mean() > 128) << i
    return v


def write_stamp(img: np.ndarray, value: int, block: int, per_row: int) -> np.ndarray:
    img = img.copy()
    for i in range(BITS):
        y, x = (i // per_row) * block, (i % per_row) * block
        img[y:y + block, x:x + block] = 255 if (value >> i) & 1 else 0
    return img


PAGE_JS = """
async () => {
  const MASK = 2 ** 40;
  const cam = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
  const v = document.createElement('video'); v.srcObject = cam; v.muted = true; await v.play();
  const c = document.createElement('canvas'); c.width = 640; c.height = 480;
  const g = c.getContext('2d');
  setInterval(() => {
    g.drawImage(v, 0, 0, 640, 480);
    const t = Date.now() % MASK;
    for (let i = 0; i < 40; i++) { g.fillStyle = Math.floor(t / 2 ** i) % 2 ? '#fff' : '#000'; g.fillRect(i * 16, 0, 16, 16); }
  }, 1000 / 30);
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTrack(c.captureStream(30).getVideoTracks()[0]);
  pc.addTransceiver('video', {direction: 'recvonly'});
  window.__lat = []; window.__frames = 0;
  pc.ontrack = (e) => {
    const out = document.createElement('video'); out.srcObject = new MediaStream([e.track]); out.muted = true;
    document.body.appendChild(out); out.play();
    const oc = document.createElement('canvas'); oc.width = 256; oc.height = 256; const og = oc.getContext('2d');
    const each = () => {
      og.drawImage(out, 0, 0, 256, 256);
      const px = og.getImageData(0, 0, 256, 24).data;
      let t = 0;
      for (let i = 0; i < 40; i++) {
        const y = Math.floor(i / 20) * 12 + 6, x = (i % 20) * 12 + 6, k = (y * 256 + x) * 4;
        if ((px[k] + px[k + 1] + px[k + 2]) / 3 > 128) t += 2 ** i;
      }
      window.__frames += 1; window.__lat.push((Date.now() % MASK) - t);
      out.requestVideoFrameCallback(each);
    };
    out.requestVideoFrameCallback(each);
  };
  const offer = await pc.createOffer(); await pc.setLocalDescription(offer);
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  window.__pc = pc;
  return pc.localDescription.sdp;
}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file or training run (default: the shipped model)")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()

    from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
    from av import VideoFrame
    from playwright.sync_api import sync_playwright

    live.live_threads()
    anim = Animator(args.model, device="cpu")
    anim.set_source([astronaut()], progress=False)
    renderer = live.LiveRenderer(anim, AnimateOptions(progress=False), fps=FPS)
    server_ms: list[float] = []

    class Animated(MediaStreamTrack):
        kind = "video"

        def __init__(self, source: MediaStreamTrack) -> None:
            super().__init__()
            self.source = source
            self.latest: VideoFrame | None = None
            self.fresh = asyncio.Event()
            self.received = self.dropped = 0
            asyncio.ensure_future(self._pump())

        async def _pump(self) -> None:  # keep only the newest incoming frame
            while True:
                frame = await self.source.recv()
                self.received += 1
                if self.latest is not None:
                    self.dropped += 1
                self.latest = frame
                self.fresh.set()

        async def recv(self) -> VideoFrame:
            await self.fresh.wait()
            self.fresh.clear()
            frame, self.latest = self.latest, None
            img = frame.to_ndarray(format="rgb24")
            t0 = time.perf_counter()
            stamp = read_stamp(img, IN_BLOCK, 40)
            out, _ = await asyncio.get_running_loop().run_in_executor(None, renderer, img)
            server_ms.append((time.perf_counter() - t0) * 1000)
            vf = VideoFrame.from_ndarray(write_stamp(out, stamp, OUT_BLOCK, 20), format="rgb24")
            vf.pts, vf.time_base = frame.pts, frame.time_base
            return vf

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    tracks: list[Animated] = []

    async def answer(sdp: str) -> str:
        pc = RTCPeerConnection()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            t = Animated(track)
            tracks.append(t)
            pc.addTrack(t)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        while pc.iceGatheringState != "complete":
            await asyncio.sleep(0.05)
        return pc.localDescription.sdp

    with tempfile.TemporaryDirectory(prefix="rtc-bench-") as tmp:
        y4m = live.write_y4m(Path(tmp) / "camera.y4m", driving_clip(), FPS)
        chrome_args = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
                       "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={y4m}",
                       "--disable-features=WebRtcHideLocalIpsWithMdns"]
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(Path(tmp) / "profile"),
                                                        executable_path="/usr/bin/chromium", headless=True,
                                                        args=chrome_args)
            page = ctx.new_page()
            page.route("http://localhost/", lambda r: r.fulfill(body="<html><body></body></html>",
                                                                content_type="text/html"))
            page.goto("http://localhost/")  # a secure context (getUserMedia), served by the route above
            offer = page.evaluate(PAGE_JS)
            ans = asyncio.run_coroutine_threadsafe(answer(offer), loop).result(60)
            page.evaluate("(sdp) => window.__pc.setRemoteDescription({type: 'answer', sdp})", ans)
            page.wait_for_function("window.__frames > 5", timeout=120_000)
            page.evaluate("window.__lat = []")
            time.sleep(args.seconds)
            lat = np.array(page.evaluate("window.__lat"), np.float64)
            ctx.close()
    ok = lat[(lat >= 0) & (lat < 10_000)]  # a misread stamp (compression) is left out, and counted
    t = tracks[0] if tracks else None
    print(f"WebRTC path ({args.model or 'shipped model'}): {len(lat)} frames received in {args.seconds:g} s: "
          f"{len(lat) / args.seconds:.1f} fps; capture → received latency p50 {np.percentile(ok, 50):.0f} ms, "
          f"p95 {np.percentile(ok, 95):.0f} ms ({len(lat) - len(ok)} stamps unreadable); server animate p50 "
          f"{np.median(server_ms):.0f} ms over {len(server_ms)} frames animated; dropped on the server {t.dropped if t else 0} of {t.received if t else 0}")


if __name__ == "__main__":
    main()
