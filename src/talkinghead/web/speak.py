"""The page's "Speak" tab: a portrait + typed text (eSpeak NG, offline) or an uploaded audio file → a talking video.

It keeps the rules of :mod:`talkinghead.web.app`: only files uploaded through the page are read (checked by
:func:`~talkinghead.web.app.accepted_upload`), each request works in its own job folder that the janitor deletes,
speech is limited to ``Limits.max_driving_seconds``, and errors reach the page as one friendly line.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from talkinghead.errors import InputError

if TYPE_CHECKING:
    from talkinghead.speech.drive import SpeakResult
    from talkinghead.web.app import Service

log = logging.getLogger("talkinghead.web")

SPEAK_EXAMPLE = "Example photo (astronaut)"
SPEAK_UPLOAD = "My photo"
SAY_TEXT = "Type a text"
SAY_AUDIO = "Upload audio"
LANGUAGES = ["en", "en-us", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "cmn", "ja", "hi", "ar"]
VOICES = ["(default)", "m1", "m3", "m7", "f1", "f3", "f4", "klatt", "whisper"]
SPEAK_OUTPUT = "talkinghead-speak.mp4"


def speak_tab(service: Service) -> None:
    """The tab's components and its event (call inside ``gr.Tab``)."""
    limits = service.limits
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### 1. Who speaks")
            who = gr.Radio([SPEAK_EXAMPLE, SPEAK_UPLOAD], value=SPEAK_EXAMPLE, show_label=False,
                           elem_id="speak-source-kind")
            photo = gr.File(label="A photo of one person", file_count="single", file_types=["image"],
                            type="filepath", visible=False, elem_id="speak-photo")
            who.change(lambda k: gr.File(visible=k == SPEAK_UPLOAD), who, photo, queue=False,
                       show_progress="hidden", api_visibility="private")
            gr.Markdown("### 2. What they say")
            how = gr.Radio([SAY_TEXT, SAY_AUDIO], value=SAY_TEXT, show_label=False, elem_id="speak-how")
            text = gr.Textbox(label="Text (spoken offline by eSpeak NG)", lines=3, max_length=1000,
                              value="Hello! I am a photograph, and now I can talk.", elem_id="speak-text")
            with gr.Row():
                language = gr.Dropdown(LANGUAGES, value="en", label="Language", allow_custom_value=True,
                                       elem_id="speak-language")
                voice = gr.Dropdown(VOICES, value="(default)", label="Voice", allow_custom_value=True,
                                    elem_id="speak-voice")
            audio = gr.Audio(label=f"Speech (up to {limits.max_driving_seconds:g} s)", sources=["upload"],
                             type="filepath", visible=False, elem_id="speak-audio")
            how.change(lambda k: (gr.Textbox(visible=k == SAY_TEXT), gr.Dropdown(visible=k == SAY_TEXT),
                                  gr.Dropdown(visible=k == SAY_TEXT), gr.Audio(visible=k == SAY_AUDIO)),
                       how, [text, language, voice, audio], queue=False, show_progress="hidden",
                       api_visibility="private")
            paste = gr.Checkbox(False, label="Paste back", info="Blend the animated face into the whole photo")
            run = gr.Button("Speak", variant="primary", elem_id="speak-run")
        with gr.Column():
            result = gr.Video(label="Result", interactive=False, buttons=["download"], elem_id="speak-result")
            status = gr.Markdown(elem_id="speak-status")
    run.click(lambda *a: speak_request(service, *a), [who, photo, how, text, language, voice, audio, paste],
              [result, status], api_name="speak", concurrency_id="animate", show_progress="full")


def speak_request(service: Service, who: str, photo: str | None, how: str, text: str | None, language: str | None,
                  voice: str | None, audio: str | None, paste_back: bool) -> tuple[str, str]:
    """One "Speak" request; returns the video's path and the summary line."""
    from talkinghead.web.app import SERVER_ERROR, friendly_message, notes_markdown, notes_of_this_thread

    service.janitor.sweep()
    job = Path(tempfile.mkdtemp(prefix="job-", dir=service.jobs))
    service.janitor.claim(job)
    names: dict[str, str] = {}
    try:
        with notes_of_this_thread() as notes:
            result = _speak(service, job, names, who, photo, how, text, language, voice, audio, bool(paste_back))
    except InputError as exc:
        shutil.rmtree(job, ignore_errors=True)
        raise gr.Error(friendly_message(exc, names), title="Cannot speak", print_exception=False) from None
    except Exception:
        shutil.rmtree(job, ignore_errors=True)
        log.exception("speak failed")
        raise gr.Error(SERVER_ERROR, title="Cannot speak", print_exception=False) from None
    finally:
        service.janitor.release(job)
    text_line = (f"**Done**: {result.frames} frames ({result.audio_seconds:.1f} s of speech) in {result.seconds:.1f} s "
                 f"of compute.")
    if result.render is not None and result.render.payload:
        text_line += (f" The video is marked as synthetic (watermark `{result.render.payload}`, and signed Content "
                      "Credentials).")
    return str(result.path), text_line + notes_markdown(notes, names)


def _speak(service: Service, job: Path, names: dict[str, str], who: str, photo: str | None, how: str,
           text: str | None, language: str | None, voice: str | None, audio: str | None,
           paste_back: bool) -> SpeakResult:
    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.speech.drive import SpeechDriver, load_speech, speak
    from talkinghead.web.app import accepted_upload

    if who == SPEAK_EXAMPLE:
        from talkinghead.data.examples import astronaut

        sources: list = [astronaut()]
    else:
        if not photo:
            raise InputError("please upload a photo of the person (or choose the example photo)")
        sources = [service._photo(photo, job, 0, names)]
    if how == SAY_AUDIO:
        if not audio:
            raise InputError("please upload an audio file with the speech (or type a text)")
        path = accepted_upload(audio, service.limits, "audio file")
        names[str(path)] = path.name
        said: dict = {"audio": path, "text": None}
    else:
        said = {"audio": None, "text": text or ""}
    speech = load_speech(said["audio"], said["text"], job, language=(language or "en").strip(),
                         voice=None if voice in (None, "", "(default)") else voice,
                         max_seconds=service.limits.max_driving_seconds)
    anim = Animator(service.bundle, device=service.device)
    anim.set_source(sources)
    return speak(anim, job / SPEAK_OUTPUT, speech, SpeechDriver(), AnimateOptions(paste_back=paste_back,
                                                                                   progress=True))
