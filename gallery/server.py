"""Serving a built page: gradio's queue (the lanes' limits), the theme and CSS, the limits on
uploads, the temporary-file sweeper and the opening answers, then gradio's `launch`. The whole
gallery (`python app.py`) and one tab on its own page (`python -m demos.<tab>`) are served alike.
"""

from __future__ import annotations

import gradio as gr

from gallery import housekeeping, opening, settings, ui


def launch(app: gr.Blocks, **overrides):
    """Serve `app` (built and hardened); `overrides` go to gradio's `launch` (tests: a free port,
    `prevent_thread_lock=True`). Returns what gradio's `launch` returns."""
    app.queue(max_size=settings.QUEUE_MAX_SIZE, default_concurrency_limit=settings.MODEL_CONCURRENCY)
    options = dict(
        server_name=settings.SERVER_NAME,
        server_port=settings.SERVER_PORT,
        theme=ui.THEME,
        css=ui.CSS,
        max_file_size=settings.MAX_FILE_SIZE,
        auth=tuple(settings.AUTH.split(":", 1)) if ":" in settings.AUTH else None,
        allowed_paths=[str(ui.ASSETS)],
        ssr_mode=False,
        footer_links=["api"],
    )
    options.update(overrides)
    housekeeping.start_temp_sweeper(app)  # before launch(), which blocks in `python app.py`
    opening.warm_all()  # each tab's opening answer, in the background, ready for the first visitors
    return app.launch(**options)


def standalone(create_demo, title: str):
    """`python -m demos.<tab>`: that one tab on its own page, hardened and launched (queue, lanes,
    limits) exactly as the gallery is."""
    with gr.Blocks(title=title) as page:
        create_demo()
    ui.harden(page)
    return launch(page)
