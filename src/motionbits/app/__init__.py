"""`motionbits app`: a web page (gradio) to try a trained model on the CPU.

Tabs: Transfer (content of one clip, motion of another), Bitrate (a clip through the .mbits codec),
Generate (new motion from a motion prior, with --prior) and Model (the checkpoint's config, rates
and evaluation). docs/app.md describes the page, its limits and what it does with uploads.

    inputs.py      checks an upload (type, size, frames) before anything decodes it
    examples.py    small example clips made from the shipped Sprites sheets
    session.py     the loaded model and prior, per-request output folders
    work.py        what each tab computes (no gradio): videos, bitrate report, generation
    plots.py       the bits-per-frame plot
    model_card.py  the Model tab's text
    page.py        the gradio Blocks: components, handlers, messages on the page
    server.py      launching it: queue, file limits, served paths
"""
