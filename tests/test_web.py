"""The web page, end to end in a real browser: Debian's headless Chromium driven by Playwright.

The server runs in this process on a free loopback port with the micro model (or, when TALKINGHEAD_SCREENSHOT
is set, the shipped model, so the saved screenshot shows a real result). The browser tests are skipped when
/usr/bin/chromium or Playwright is missing (.ci/setup-browser installs Chromium; never `playwright install`).
A few fast tests at the end check the safety rules and the CLI hook without a browser.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from talkinghead.data.examples import astronaut, astronaut_video
from talkinghead.errors import InputError
from talkinghead.io import probe_video, write_image
from tests.conftest import write_frames

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAX_SECONDS = 5.0
SCREENSHOT_ENV = "TALKINGHEAD_SCREENSHOT"

pytestmark = pytest.mark.filterwarnings("ignore:::gradio[.]queueing")  # Gradio's queue uses pandas-3-deprecated options
pytest.importorskip("talkinghead.web.app", reason="the web page needs gradio (pip install -r requirements.lock)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inputs:
    photo: Path
    clip: Path
    long_clip: Path
    noise: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """A photo, a 1-second driving clip, a clip longer than the server's cap and a photo without a face."""
    d = tmp_path_factory.mktemp("web_inputs")
    frames, _ = astronaut_video(seconds=1.0, fps=25.0, size=256)
    long_frames = [np.zeros((64, 64, 3), np.uint8)] * int(25 * (MAX_SECONDS + 1))
    rng = np.random.default_rng(0)
    return Inputs(photo=write_image(d / "astronaut.png", astronaut()),
                  clip=write_frames(d / "driving.mp4", frames),
                  long_clip=write_frames(d / "long.mp4", long_frames),
                  noise=write_image(d / "noise.png", rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)))


@pytest.fixture(scope="module")
def server(micro_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page on a free loopback port; stopped (and its temporary folder removed) afterwards."""
    from talkinghead.web import Limits, serve

    temp = tmp_path_factory.mktemp("web_server")
    port = _free_port()
    model = None if os.environ.get(SCREENSHOT_ENV) else micro_model
    demo = serve(port=port, model=model, limits=Limits(max_driving_seconds=MAX_SECONDS), device="cpu",
                 temp_dir=temp, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium with a fresh profile."""
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (run .ci/setup-browser)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -r requirements.lock)")
    profile = tmp_path_factory.mktemp("chromium_profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, server: str) -> Iterator[tuple[object, list[str]]]:
    """A fresh tab on the page, and the list of every URL it requests."""
    tab = browser.new_page()
    tab.set_default_timeout(60_000)
    urls: list[str] = []
    tab.on("request", lambda r: urls.append(r.url))
    tab.goto(server + "/")
    tab.locator("#run").wait_for()
    yield tab, urls
    tab.close()


def _assert_local_only(urls: list[str], server: str) -> None:
    """The page loaded nothing from another host (no CDN, fonts, analytics)."""
    foreign = [u for u in urls if not u.startswith((server, "data:", "blob:"))]
    assert not foreign, f"requests to other hosts: {foreign}"


def _choose(tab, group: str, label: str) -> None:
    tab.locator(f"#{group}").get_by_text(label, exact=True).click()


def _upload_photo(tab, path: Path) -> None:
    _choose(tab, "source-kind", "My photo(s)")
    tab.locator("#source-files input[type=file]").set_input_files(str(path))
    from playwright.sync_api import expect

    expect(tab.locator("#source-files")).to_contain_text(path.stem)  # the name shows once uploaded


def _upload_video(tab, path: Path) -> None:
    _choose(tab, "driving-kind", "My video")
    tab.locator("#driving-video input[type=file]").set_input_files(str(path))
    tab.locator("#driving-video video").wait_for()


def _screenshot_path(tmp_path: Path) -> Path:
    env = os.environ.get(SCREENSHOT_ENV)
    return Path(env) if env else tmp_path / "web.png"


def test_upload_photo_and_video_plays_result(page, server: str, inputs: Inputs, tmp_path: Path) -> None:
    tab, urls = page
    _upload_photo(tab, inputs.photo)
    _upload_video(tab, inputs.clip)
    tab.get_by_label("Side by side").check()
    tab.locator("#run").click()

    tab.wait_for_function(
        "() => { const v = document.querySelector('#result video');"
        "        return v && v.src && (v.readyState >= 1 || v.duration > 0); }", timeout=300_000)
    tab.locator("#status").get_by_text("Done").wait_for()
    src = tab.locator("#result video").get_attribute("src")
    assert src and src.startswith(server), src

    body = tab.request.get(src).body()
    assert body[4:8] == b"ftyp"
    saved = tmp_path / "result.mp4"
    saved.write_bytes(body)
    info = probe_video(saved)
    assert info.n_frames == 25 and info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (512, 256)  # driver | result, 256 each

    shot = _screenshot_path(tmp_path)
    shot.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    _assert_local_only(urls, server)


def test_photo_without_face_shows_friendly_error(page, server: str, inputs: Inputs) -> None:
    tab, urls = page
    _upload_photo(tab, inputs.noise)
    tab.locator("#run").click()
    message = tab.get_by_text("No face found in noise.png")
    message.first.wait_for(timeout=120_000)
    text = tab.locator("body").inner_text()
    assert "clearly visible" in text
    assert "Traceback" not in text and "/tmp" not in text
    _assert_local_only(urls, server)


def test_too_long_driving_video_is_refused_before_work(page, server: str, inputs: Inputs) -> None:
    tab, urls = page
    _upload_video(tab, inputs.long_clip)
    tab.locator("#run").click()
    tab.get_by_text(f"up to {MAX_SECONDS:g} s").filter(has_text="long.mp4").first.wait_for(timeout=60_000)
    assert tab.locator("#result video").count() == 0
    _assert_local_only(urls, server)


# -- without a browser -------------------------------------------------------------------------------------------
def test_only_files_inside_the_upload_folder_are_read(tmp_path: Path) -> None:
    from talkinghead.web import Limits
    from talkinghead.web.app import accepted_upload

    uploads, outside = tmp_path / "uploads", tmp_path / "elsewhere"
    (uploads / "abc").mkdir(parents=True)
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes(b"x" * 10)
    good = uploads / "abc" / "photo.png"
    good.write_bytes(b"x" * 10)
    link = uploads / "abc" / "link.png"
    link.symlink_to(secret)
    big = uploads / "abc" / "big.png"
    big.write_bytes(b"x" * (2 * 2**20))
    limits, roots = Limits(max_upload_mb=1), [uploads.resolve()]

    assert accepted_upload(str(good), limits, "photo", roots) == good.resolve()
    for bad in (secret, link, uploads / "abc" / ".." / ".." / "elsewhere" / "secret.png"):
        with pytest.raises(InputError, match="must be uploaded through this page"):
            accepted_upload(str(bad), limits, "photo", roots)
    with pytest.raises(InputError, match="big.png is 2.0 MB; this server accepts files up to 1 MB"):
        accepted_upload(str(big), limits, "photo", roots)
    with pytest.raises(InputError, match="no longer on the server"):
        accepted_upload(str(uploads / "gone.png"), limits, "photo", roots)
    with pytest.raises(InputError, match="no photo was uploaded"):
        accepted_upload(None, limits, "photo", roots)


def test_janitor_removes_old_job_folders_but_not_running_ones(tmp_path: Path) -> None:
    from talkinghead.web.app import Janitor

    old, running, fresh = (tmp_path / n for n in ("old", "running", "fresh"))
    for d in (old, running, fresh):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "out.mp4").write_bytes(b"x")
    past = time.time() - 3600
    for d in (old, running):
        os.utime(d, (past, past))
    janitor = Janitor(tmp_path, max_age_s=600, every_s=60)
    janitor.claim(running)
    assert janitor.sweep() == 1
    assert not old.exists() and running.exists() and fresh.exists()
    janitor.release(running)
    assert janitor.sweep() == 1 and not running.exists()


def test_serve_command_defaults_to_loopback() -> None:
    from talkinghead.web.cli import add_serve_command, limits_from_args

    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.model) == ("127.0.0.1", 7860, None)
    args = parser.parse_args(["serve", "--port", "8000", "--max-seconds", "12", "--max-upload-mb", "5"])
    limits = limits_from_args(args)
    assert args.port == 8000 and limits.max_driving_seconds == 12 and limits.max_upload_bytes == 5 * 2**20
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--port", "70000"])


def test_serve_on_a_busy_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Gradio's own failure here was an OSError (exit 1) after "serving on ..." had been printed."""
    from talkinghead.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        rc = main(["serve", "--port", str(port)])
    captured = capsys.readouterr()
    assert rc == 2 and "serving on" not in captured.out
    assert captured.err.strip().splitlines() == [f"talkinghead: error: port {port} on 127.0.0.1 is in use (another "
                                                 "server?): choose another with --port"]


def test_notes_of_a_run_are_shown_on_the_page(micro_model: Path, tmp_path: Path) -> None:
    """The command line prints notes such as "has 2 faces; using the largest"; the page shows them under the
    video, with the visitor's file name instead of the server's path."""
    from talkinghead.models.bundle import load_model
    from talkinghead.web import Limits
    from talkinghead.web.app import DRIVING_EXAMPLE, SOURCE_UPLOAD, Service, upload_roots

    folder = upload_roots()[0] / f"test-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        two = write_image(folder / "two people.png", np.concatenate([astronaut(), astronaut()[:, ::-1]], axis=1))
        (tmp_path / "jobs").mkdir()
        service = Service(load_model(micro_model), Limits(), "cpu", tmp_path / "jobs")
        video, text = service.run(SOURCE_UPLOAD, [str(two)], DRIVING_EXAMPLE, None, 0, True, False, False,
                                  progress=lambda *a, **k: None)
        assert Path(video).is_file()
        assert re.search(r"\*\*Note\*\*: Two people\.png has \d faces; using the largest(\n|$)", text), text
        assert "--face-index" not in text  # a command-line hint: the page has no such option
        assert str(folder) not in text
    finally:
        shutil.rmtree(folder, ignore_errors=True)
