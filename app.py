"""Foundation Model Gallery: one tab per idea of the chapter, each a live model you can poke.

This file is the table of contents. Every tab lives in `demos/`, the shared frame (settings,
model loading, the page shell) in `gallery/`. Models load lazily, on a tab's first use.
"""

from gallery import settings  # first: decides online/offline before anything imports the Hub
from gallery import device  # noqa: F401  (imports `spaces` before torch, as ZeroGPU requires)

import gradio as gr

from gallery import housekeeping, room_ui, ui

DEMOS = [  # (tab title, module with create_demo())
    ("1 · Next word", "demos.next_word"),
    ("2 · Fill the gap (inpainting)", "demos.inpainting"),
    ("3 · CLIP zero- & few-shot", "demos.clip_classify"),
    ("4 · Text to image", "demos.text_to_image"),
    ("5 · Prompting strategies", "demos.prompting"),
    ("6 · Pre-train it yourself", "demos.pretrain"),
]

INTRO = """## Foundation Model Gallery
Small experiments with real models, one idea per tab: how these models learn from raw data without
labels, and how one pre-trained model can then do many jobs."""


def build_app() -> gr.Blocks:
    # delete_cache: gradio removes its own old temporary files (and all of them at shutdown);
    # housekeeping's sweeper adds the size cap (started in `launch`).
    with gr.Blocks(
        title="Foundation Model Gallery", delete_cache=(settings.TEMP_SWEEP_S, settings.TEMP_MAX_AGE_S)
    ) as app:
        mode = "tiny test models" if settings.TINY_MODELS_DIR else None
        offline = f" *(Running offline{' with ' + mode if mode else ''}.)*" if mode or settings.OFFLINE else ""
        gr.Markdown(INTRO + offline, elem_id="gallery-intro")
        room_ui.panel(app)  # closed: guesses counted together in a workshop room
        with gr.Tabs():
            for title, module_name in DEMOS:
                with gr.Tab(title, id=module_name.split(".")[-1]):
                    ui.build_tab(module_name)
    ui.harden(app)
    return app


def launch(app: gr.Blocks, **overrides):
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
    return app.launch(**options)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if settings.PRELOAD:
        from gallery import models

        models.preload()
    launch(build_app())
