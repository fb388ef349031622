"""Serving the page: `motionbits app` and the tests start it here.

gradio's queue runs one request at a time (the handlers share one concurrency slot), uploads above
the size limit are refused by gradio before they reach the app, no folder is added to what gradio
may serve (allowed_paths empty: only its own cache of uploads and returned files), nothing is
shared through a public link, and no telemetry or version check leaves the machine.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from motionbits.app.inputs import MAX_UPLOAD_MB

QUEUE_SIZE = 16            # requests waiting at most; more are turned away with a message


def serve(checkpoint: str | Path, prior: str | Path | None = None, host: str = "127.0.0.1", port: int = 7860,
          device: str = "auto", block: bool = True):
    """Load the model, build the page and serve it at http://host:port/. With block=False it returns
    (page, session) at once, serving in the background (page.close() and session.close() stop it)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"      # read when gradio is imported
    from motionbits.app.page import build_page
    from motionbits.app.session import AppSession

    session = AppSession(checkpoint, prior, device)
    try:
        page = build_page(session)
        page.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
        if block:   # `kill` stops it like Ctrl-C: gradio closes the server, then the app's folder goes
            signal.signal(signal.SIGTERM, _interrupt)
        page.launch(server_name=host, server_port=port, share=False, allowed_paths=[],
                    max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True, ssr_mode=False, mcp_server=False,
                    pwa=False, prevent_thread_lock=not block, quiet=not block)
    except BaseException:
        session.close()
        raise
    if block:
        session.close()
    return page, session


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
