"""Serving the page: `motionbits app` and the tests start it here.

gradio's queue runs one request at a time (the handlers share one concurrency slot), uploads above
the size limit are refused by gradio before they reach the app, no folder is added to what gradio
may serve (allowed_paths empty: only its own cache of uploads and returned files), nothing is
shared through a public link, and no telemetry or version check leaves the machine.

gradio keeps uploads and the files it serves in GRADIO_TEMP_DIR: it is pointed into the app's own
temporary folder, so removing that folder removes every upload and result. Ctrl-C (SIGINT) or
`kill` (SIGTERM) stop the app at once, also mid-request: the folder is removed and the process
ends with os._exit (130 after Ctrl-C, 0 after SIGTERM). A normal exit would wait for, or tear down
under, the request's torch worker threads, which aborts the process ("terminate called without
an active exception", exit 134) and left the folders behind.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from motionbits.app.inputs import MAX_UPLOAD_MB

QUEUE_SIZE = 16            # requests waiting at most; more are turned away with a message
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 0}


def serve(checkpoint: str | Path, prior: str | Path | None = None, host: str = "127.0.0.1", port: int = 7860,
          device: str = "auto", block: bool = True, fast_autoencoder: str | Path | None = None):
    """Load the model, build the page and serve it at http://host:port/. With block=False it returns
    (page, session) at once, serving in the background (page.close() and session.close() stop it);
    with block=True it serves until SIGINT or SIGTERM and ends the process (it does not return)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"      # read when gradio is imported
    from motionbits.app.session import AppSession

    stop = threading.Event()
    stopped_by: list[int] = []
    if block:            # from here on a signal only asks to stop: the folder is removed when it is safe
        def on_signal(signum, frame) -> None:
            stopped_by.append(signum)
            stop.set()
        previous = {signum: signal.signal(signum, on_signal) for signum in EXIT_CODES}
    try:
        session = AppSession(checkpoint, prior, device, fast_autoencoder)
    except BaseException:
        if block:                # a refused checkpoint: the caller's handlers back (the tests call main())
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        raise
    session.keep_gradio_files_inside()                    # before gradio is imported: it reads it then too
    try:
        from motionbits.app.page import CSS, build_page

        page = build_page(session)
        page.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
        page.launch(server_name=host, server_port=port, share=False, allowed_paths=[],
                    max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True, ssr_mode=False, mcp_server=False,
                    pwa=False, prevent_thread_lock=True, quiet=not block, css=CSS)
    except BaseException:
        session.close()
        raise
    if not block:
        return page, session
    while not stop.wait(0.5):    # Ctrl-C or kill during loading lands here too, at once
        pass
    session.close()                       # first: whatever happens next, no upload or result is left
    print("motionbits app: stopped; its temporary files are removed", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_CODES[stopped_by[0]])
