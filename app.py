"""Foundation Model Gallery: one tab per idea of the chapter, each a live model you can poke.

This file is the table of contents. Every tab lives in `demos/`, the shared frame (settings,
model loading, the page shell) in `gallery/`. Models load lazily, on a tab's first use.
"""

from gallery import settings  # first: decides online/offline before anything imports the Hub
from gallery import device  # noqa: F401  (imports `spaces` before torch, as ZeroGPU requires)

import gradio as gr

from gallery import housekeeping, opening, room_ui, ui

DEMOS = [  # (tab title, module with create_demo())
    ("1 · Next word", "demos.next_word"),
    ("2 · Fill the gap (inpainting)", "demos.inpainting"),
    ("3 · CLIP zero- & few-shot", "demos.clip_classify"),
    ("4 · Text to image", "demos.text_to_image"),
    ("5 · Prompting strategies", "demos.prompting"),
    ("6 · Pre-train it yourself", "demos.pretrain"),
]

INTRO = """## Foundation Model Gallery
Small experiments with real models, one idea per tab: how they learn from raw data, and how one
pre-trained model then does many jobs."""


def build_app() -> gr.Blocks:
    ui.LINKED_INPUTS.clear()
    tab_ids = [module_name.split(".")[-1] for _, module_name in DEMOS]
    # delete_cache: gradio removes its own old temporary files (and all of them at shutdown);
    # housekeeping's sweeper adds the size cap (started in `launch`).
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
        linked = list(ui.LINKED_INPUTS)
        _wire_links(app, tabs, current_tab, share, link, tab_ids, linked)
    ui.harden(app)
    return app


# The server selects the linked tab; should that update reach the page before its tabs are drawn,
# this clicks the tab once they are (and stops as soon as it is selected).
OPEN_TAB_JS = """() => {
  const want = new URLSearchParams(location.search).get('tab') || location.hash.slice(1);
  const select = (tries) => {
    // A '#<tab>' followed since the page opened wins: stop re-selecting the first link's tab.
    const now = new URLSearchParams(location.search).get('tab') || location.hash.slice(1);
    if (now !== want) return;
    const button = document.querySelector(`button[role=tab][data-tab-id="${want}"]`);
    if (button && button.getAttribute('aria-selected') === 'true') return;
    if (button) button.click();
    if (tries > 0) setTimeout(() => select(tries - 1), 300);
  };
  if (want) setTimeout(() => select(20), 300);
  window.addEventListener('hashchange', () => {  // a '#<tab>' link followed on the open page
    const tab = location.hash.slice(1);
    document.querySelector(`button[role=tab][data-tab-id="${tab}"]`)?.click();
  });
  return [location.hash];
}"""


def _wire_links(app, tabs, current_tab, share, link, tab_ids, linked) -> None:
    """`?tab=<module name>` opens that tab (`#<module name>` too); the share button writes a link
    with the tab and its main inputs (`ui.linked`), which fills them back in when opened."""

    @ui.user_errors
    def open_link(hash_tab: str, request: gr.Request):
        tab = request.query_params.get("tab") or (hash_tab or "").lstrip("#")
        if tab not in tab_ids:
            return gr.skip(), gr.skip(), *(gr.skip() for _ in linked)
        values = ui.link_values(request, tab)
        updates = [ui.link_update(c, values.get(key)) if t == tab else gr.skip() for t, key, c in linked]
        return gr.Tabs(selected=tab), tab, *updates

    app.load(
        open_link, [current_tab], [tabs, current_tab, *(c for _, _, c in linked)],
        js=OPEN_TAB_JS, queue=False, api_visibility="private",
    )
    keys = [[t, key] for t, key, _ in linked]
    share.click(
        None, [current_tab, *(c for _, _, c in linked)], link, queue=False, api_visibility="private",
        js=f"""(tab, ...values) => {{
            const keys = {keys!r};
            const url = new URL(window.location.href.split('#')[0]);
            url.search = '';
            url.searchParams.set('tab', tab);
            keys.forEach(([t, key], i) => {{
                if (t === tab && values[i] !== null && values[i] !== undefined && values[i] !== '') {{
                    url.searchParams.set(key, String(values[i]));
                }}
            }});
            if (navigator.clipboard) navigator.clipboard.writeText(url.toString()).catch(() => {{}});
            return {{__type__: 'update', value: url.toString(), visible: true}};
        }}""",
    )


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
    opening.warm_all()  # each tab's opening answer, in the background, ready for the first visitors
    return app.launch(**options)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from gallery import text_server

    text_server.start()  # GALLERY_TEXT_SERVER: checked once here; unset, the text tabs run in-process
    if settings.PRELOAD:
        from gallery import models

        models.preload()
    launch(build_app())
