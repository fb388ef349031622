"""The page: one gradio Blocks with the Transfer, Bitrate, Generate and Model tabs.

Each input shows, as soon as it is given, a preview of what the model will see and a note of what
was done to get there (cropped, scaled, resampled, held still: notes.py); the examples are
animated thumbnails to click. Each button's handler checks the uploads (inputs.py), runs the work
(work.py) in a fresh request folder and shows what came out, with the result alone and the
side-by-side to download; a problem with the input (MotionbitsError, OSError) becomes a message in
the tab's status box and the page keeps working. Every model handler shares one concurrency slot
("model"): requests wait in gradio's queue and the model runs one at a time; previews have their
own slot. The page names the model by its run folder, never by the server's path.
"""
from __future__ import annotations

import functools
import time

import gradio as gr

from motionbits.app import model_card, work
from motionbits.app.examples import TRANSFER_PAIRS, describe
from motionbits.app.inputs import MAX_FRAMES, MAX_SIDE, MAX_UPLOAD_MB, check_upload
from motionbits.app.previews import display_scale
from motionbits.app.session import AppSession
from motionbits.data.sprites import CREDIT, MOTION_NAMES
from motionbits.data.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from motionbits.errors import MotionbitsError

ONE_AT_A_TIME = {"concurrency_limit": 1, "concurrency_id": "model"}   # every model handler: one slot, queued
PREVIEWS = {"concurrency_limit": 1, "concurrency_id": "preview"}     # reading an upload: not behind the model
LIMITS = (f"Uploads: a video ({', '.join(s[1:] for s in VIDEO_SUFFIXES)}) or an image "
          f"({', '.join(s[1:] for s in IMAGE_SUFFIXES)}), at most {MAX_UPLOAD_MB} MB, {MAX_FRAMES} frames and "
          f"{MAX_SIDE} pixels a side.")
# The browser enlarges pictures smoothly; pixel art (Sprites) must keep its sharp pixels.
CSS = ".pixelated img, .pixelated video { image-rendering: pixelated; }"


def _shows_errors(outputs: int):
    """A handler whose input problems come back as a message in its status box (the last output),
    the other `outputs` outputs cleared, instead of an exception."""
    def wrap(handler):
        @functools.wraps(handler)                      # keeps the gr.Progress parameter visible to gradio
        def guarded(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except MotionbitsError as err:
                message = str(err)
            except OSError as err:
                message = f"{err.strerror or err}"
            return (*[None] * outputs, f"**Error:** {message}")
        return guarded
    return wrap


def _seed(value) -> int:
    if value is None or value < 0 or value != int(value):
        raise MotionbitsError(f"seed: a whole number of at least 0, got {value}")
    return int(value)


def _progress(progress: gr.Progress):
    return lambda fraction, text: progress(fraction, desc=text)


def _notes(notes: list[str]) -> str:
    return "\n".join(f"- Note: {n}" for n in notes)


def build_page(session: AppSession) -> gr.Blocks:
    with gr.Blocks(title="motionbits", analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"# motionbits\nContent and motion of video, apart. Model: `{session.checkpoint_name}`. {LIMITS}",
                    elem_id="header")
        with gr.Tab("Transfer"):
            _transfer_tab(session)
        with gr.Tab("Bitrate"):
            _bitrate_tab(session)
        with gr.Tab("Generate"):
            if session.prior is not None:
                _generate_tab(session)
            else:
                gr.Markdown(model_card.how_to_get_a_prior(session), elem_id="generate-missing")
        with gr.Tab("Model"):
            _model_tab(session)
        gr.Markdown(f"<small>The example clips: {CREDIT}</small>")
    return page


def _pixel_art(session: AppSession) -> list[str]:
    """The CSS class for pictures of small frames (Sprites): shown with sharp pixels."""
    return ["pixelated"] if display_scale(session.pipe.cfg.data.image_size) > 1 else []


def _steps(session: AppSession) -> gr.Slider:
    return gr.Slider(1, 50, value=session.pipe.cfg.diffusion.sample_steps, step=1, label="Sampling steps")


def _input(session: AppSession, label: str, elem_id: str, what: str, hold: bool = True) -> gr.File:
    """A file input with, below it, the preview of what the model sees and the notes on it."""
    file = gr.File(label=label, elem_id=elem_id)
    shown = gr.Image(label=f"{what}, as the model sees it", type="filepath", interactive=False,
                     elem_id=f"{elem_id}-preview", elem_classes=_pixel_art(session))
    notes = gr.Markdown(elem_id=f"{elem_id}-notes")

    @_shows_errors(outputs=1)
    def preview_input(path):
        if not path:
            return None, ""
        p = work.preview(session, check_upload(path, what), what, session.request_folder(), hold=hold)
        return str(p.gif), _notes(p.notes)

    file.change(preview_input, [file], [shown, notes], **PREVIEWS)
    return file


def _examples(session: AppSession, thumbnails, captions, elem_id: str) -> gr.Gallery:
    return gr.Gallery([(str(t), c) for t, c in zip(thumbnails, captions)], label="Examples: click one",
                      elem_id=elem_id, columns=len(thumbnails), height="auto", allow_preview=False,
                      interactive=False, elem_classes=_pixel_art(session))


def _picks(paths):
    """The handler that puts the clicked example (a gallery index into `paths`) into the input."""
    def pick_example(event: gr.SelectData):
        return str(paths[event.index])
    return pick_example


def _transfer_tab(session: AppSession) -> None:
    gr.Markdown("The look of the content, moving like the driving video, for as long as the driving video "
                "and at its frame rate. The result shows content | driver | result.")
    with gr.Row():
        with gr.Column():
            content = _input(session, "Content: an image or a clip", "transfer-content", "the content")
        with gr.Column():
            driver = _input(session, "Driving video", "transfer-driver", "the driving video")
    pairs = [(session.examples[c], session.examples[d]) for c, d in TRANSFER_PAIRS]
    gallery = _examples(session, session.pair_thumbnails,
                        [f"the look of {describe(c)}, moving like {describe(d)}" for c, d in pairs],
                        "transfer-examples")

    def pick_pair(event: gr.SelectData):
        c, d = pairs[event.index]
        return str(c), str(d)

    gallery.select(pick_pair, None, [content, driver], **PREVIEWS)
    with gr.Row():
        steps = _steps(session)
        seed = gr.Number(0, precision=0, minimum=0, label="Seed")
    run = gr.Button("Transfer", variant="primary", elem_id="transfer-run")
    video = gr.Video(label="content | driver | result", elem_id="transfer-video", loop=True, interactive=False,
                     elem_classes=_pixel_art(session))
    downloads = gr.File(label="Downloads: the result alone and the side-by-side", file_count="multiple",
                        interactive=False, elem_id="transfer-downloads")
    status = gr.Markdown(elem_id="transfer-status")

    @_shows_errors(outputs=2)
    def on_transfer(content_file, driver_file, steps, seed, progress=gr.Progress()):
        look, motion = check_upload(content_file, "content"), check_upload(driver_file, "driving video")
        steps, seed = int(steps), _seed(seed)
        started = time.perf_counter()
        r = work.transfer(session, look, motion, steps, seed, session.request_folder(), _progress(progress))
        done = f"Done in {time.perf_counter() - started:.1f} s ({steps} steps, seed {seed}); plays at {r.fps:g} fps."
        return str(r.side_by_side), [str(r.result), str(r.side_by_side)], "\n\n".join([done, _notes(r.notes)])

    run.click(on_transfer, [content, driver, steps, seed], [video, downloads, status], **ONE_AT_A_TIME)


def _bitrate_tab(session: AppSession) -> None:
    gr.Markdown("A clip through the motion codec (`motionbits encode` / `decode`): the content once, the motion "
                "as entropy-coded codes. Shows the file's size, the motion's rate and the decoded clip.")
    clip = _input(session, "Clip", "bitrate-clip", "the clip", hold=False)
    gallery = _examples(session, session.example_thumbnails, [describe(p) for p in session.examples],
                        "bitrate-examples")
    gallery.select(_picks(session.examples), None, [clip], **PREVIEWS)
    run = gr.Button("Encode and decode", variant="primary", elem_id="bitrate-run")
    with gr.Row():
        video = gr.Video(label="original | decoded", elem_id="bitrate-video", loop=True, interactive=False,
                         elem_classes=_pixel_art(session))
        plot = gr.Image(label="bits per frame", type="filepath", elem_id="bitrate-plot", interactive=False)
    mbits = gr.File(label="the .mbits file", elem_id="bitrate-file", interactive=False)
    status = gr.Markdown(elem_id="bitrate-status")

    @_shows_errors(outputs=3)
    def on_bitrate(clip_file, progress=gr.Progress()):
        upload = check_upload(clip_file, "clip")
        started = time.perf_counter()
        r = work.bitrate(session, upload, session.request_folder(), _progress(progress))
        done = f"Done in {time.perf_counter() - started:.1f} s."
        return str(r.video), str(r.plot), str(r.mbits), f"{_bitrate_table(r)}\n\n{done}"

    run.click(on_bitrate, [clip], [video, plot, mbits, status], **ONE_AT_A_TIME)


def _bitrate_table(r: work.BitrateResult) -> str:
    s = r.sizes
    in_file, codes = 8 * s["motion"] / r.frames, float(r.bits.mean())
    return "\n".join([
        "| | bytes and rate |", "|---|---|",
        f"| file | **{s['total']} bytes** for {r.frames} frames at {r.fps:g} fps ({r.total_kbps:.3f} kbps in all) |",
        f"| motion | {s['motion']} bytes: **{r.motion_kbps:.3f} kbps**, {in_file:.1f} bits a frame (coded under "
        f"{r.coded_under}) |",
        f"| of which | the codes {codes:.1f} bits a frame (the plot's bars and orange line), the packets' framing "
        f"and coder's ends {r.coder_end_bits:.0f} bits (each motion packet, a window of frames, carries its length "
        "and a CRC-8, and its code word ends on a whole byte): "
        f"{r.coder_end_bits / r.frames:.1f} a frame over these {r.frames} frames (green line) |",
        f"| content | {s['content']} bytes, once |",
        f"| header | {s['header']} bytes |",
    ])


def _generate_tab(session: AppSession) -> None:
    prior = session.prior.cfg
    gr.Markdown("New motion for a content, sampled by the motion prior; optionally continuing a clip's motion.")
    with gr.Row():
        with gr.Column():
            content = _input(session, "Content: an image or a clip", "generate-content", "the content")
        with gr.Column():
            prompt = _input(session, "Clip to continue (optional)", "generate-prompt", "the clip to continue",
                            hold=False)
    gallery = _examples(session, session.example_thumbnails, [describe(p) for p in session.examples],
                        "generate-examples")
    gallery.select(_picks(session.examples), None, [content], **PREVIEWS)
    with gr.Row():
        label = gr.Dropdown(_label_choices(session), value=-1, label="Motion class", visible=bool(prior.num_classes))
        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature")
        frames = gr.Slider(2, 128, value=16, step=1, label="Length (frames)")
        steps = _steps(session)
        seed = gr.Number(0, precision=0, minimum=0, label="Seed")
    run = gr.Button("Generate", variant="primary", elem_id="generate-run")
    video = gr.Video(label="content | generated", elem_id="generate-video", loop=True, interactive=False,
                     elem_classes=_pixel_art(session))
    downloads = gr.File(label="Downloads: the generated clip alone and the side-by-side", file_count="multiple",
                        interactive=False, elem_id="generate-downloads")
    status = gr.Markdown(elem_id="generate-status")

    @_shows_errors(outputs=2)
    def on_generate(content_file, prompt_file, label, temperature, frames, steps, seed, progress=gr.Progress()):
        look = check_upload(content_file, "content")
        start = check_upload(prompt_file, "clip to continue") if prompt_file else None
        started = time.perf_counter()
        motion_class = None if label is None or label < 0 else int(label)
        r = work.generate(session, look, start, motion_class, float(temperature), int(frames), int(steps),
                          _seed(seed), session.request_folder(), _progress(progress))
        return (str(r.side_by_side), [str(r.result), str(r.side_by_side)],
                f"Done in {time.perf_counter() - started:.1f} s; plays at {r.fps:g} fps.")

    run.click(on_generate, [content, prompt, label, temperature, frames, steps, seed], [video, downloads, status],
              **ONE_AT_A_TIME)


def _label_choices(session: AppSession) -> list[tuple[str, int]]:
    """(shown, value): Sprites priors with the 9 motion classes by name, others by number; -1: any."""
    n = session.prior.cfg.num_classes
    names = [f"class {i}" for i in range(n)]
    if session.pipe.cfg.data.kind == "sprites" and n == len(MOTION_NAMES):
        names = list(MOTION_NAMES)
    return [("any", -1), *zip(names, range(n))]


def _model_tab(session: AppSession) -> None:
    gr.Markdown(model_card.summary(session), elem_id="model-summary")
    text, figures = model_card.evaluation(session)
    with gr.Accordion("Evaluation", open=True):
        gr.Markdown(text, elem_id="model-evaluation")
        if figures is not None:
            gr.JSON(figures, label="eval.json")
    with gr.Accordion("Config", open=False):
        gr.JSON(model_card.config(session), label="config")
