"""Foundation Model Gallery: one tab per idea of the chapter, each a live model you can poke.

This file is the table of contents: one line per tab in `DEMOS`, the page around them, and the
start. Every tab is a package of `demos/`; the shared frame (settings, model loading, the page
shell, serving) lives in `gallery/`. Models load lazily, on a tab's first use.
"""

from gallery import settings  # first: decides online/offline before anything imports the Hub
from gallery import device  # noqa: F401  (imports `spaces` before torch, as ZeroGPU requires)

import gradio as gr

from gallery import links, room_ui, server, ui

DEMOS = [  # (tab title, module with create_demo())
    ("1 · Next word", "demos.next_word"),
    ("2 · Fill the gap (inpainting)", "demos.inpainting"),
    ("3 · CLIP zero- & few-shot", "demos.clip"),
    ("4 · Text to image", "demos.text_to_image"),
    ("5 · Prompting strategies", "demos.prompting"),
    ("6 · Pre-train it yourself", "demos.pretrain"),
]

INTRO = """## Foundation Model Gallery
Small experiments with real models, one idea per tab: how they learn from raw data, and how one
pre-trained model then does many jobs."""


def build_app() -> gr.Blocks:
    tab_ids = [module_name.split(".")[-1] for _, module_name in DEMOS]
    # delete_cache: gradio removes its own old temporary files (and all of them at shutdown);
    # housekeeping's sweeper adds the size cap (started by `server.launch`).
    with gr.Blocks(
        title="Foundation Model Gallery", delete_cache=(settings.TEMP_SWEEP_S, settings.TEMP_MAX_AGE_S)
    ) as app:
        mode = "tiny test models" if settings.TINY_MODELS_DIR else None
        # (Offline with the bundled models, each tab says so in its own note.)
        offline = f" *(Running offline with {mode}.)*" if mode else ""
        with gr.Row(equal_height=False, elem_id="gallery-header"):  # stacks on a phone (ui.CSS)
            gr.Markdown(INTRO + offline, elem_id="gallery-intro")
            with gr.Column(scale=0, min_width=180):
                share = gr.Button("🔗 Share this tab", size="sm", elem_id="gallery-share")
                link = gr.Textbox(show_label=False, visible=False, elem_id="gallery-link", buttons=["copy"])
        room_ui.panel(app)  # closed: guesses counted together in a workshop room
        current_tab = gr.Textbox(tab_ids[0], visible=False)
        with gr.Tabs() as tabs:
            for (title, module_name), tab_id in zip(DEMOS, tab_ids):
                with gr.Tab(title, id=tab_id) as tab:
                    ui.build_tab(module_name)
                tab.select(None, None, current_tab, js=f"() => {tab_id!r}", queue=False, api_visibility="private")
        links.wire(app, tabs, current_tab, share, link, tab_ids)  # ?tab=<id>&<input>=... and the share button
    ui.harden(app)
    return app


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from gallery import text_server

    text_server.start()  # GALLERY_TEXT_SERVER: checked once here; unset, the text tabs run in-process
    if settings.PRELOAD:
        from gallery import models

        models.preload()
    server.launch(build_app())
