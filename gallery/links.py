"""Links that open a tab with its inputs filled in: `?tab=<tab id>&<key>=<value>` (`#<tab id>` opens
the tab alone). A tab id is the name of the tab's package (`next_word`, `clip`...).

While a tab is built it marks the inputs a link may fill (`linked`); the app then wires, once per
build (`wire`), the page-load event that selects the linked tab and fills those inputs, and the
Share button that writes such a link for the tab on screen. The marks are kept per app being built
(`gradio_compat.root_block`), so two builds never mix and nothing has to be cleared.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass

import gradio as gr

from gallery import gradio_compat, ui

MAX_TEXT_CHARS = 5000  # a link's text value is cut here (the inputs' own checks apply after)
# Tab ids that were renamed, old -> new: links already handed out in workshops keep opening their tab.
RENAMED_TABS = {"clip_classify": "clip"}


def tab_id(raw: str | None) -> str | None:
    """The tab a link names, under its current id."""
    return RENAMED_TABS.get(raw, raw) if raw else raw


@dataclass(frozen=True)
class Linked:
    tab: str  # the tab id
    key: str  # the query key, e.g. "text" in ?tab=next_word&text=...
    component: gr.components.Component


_marked: "weakref.WeakKeyDictionary[gr.Blocks, list[Linked]]" = weakref.WeakKeyDictionary()


def linked(component, tab: str, key: str):
    """Let `?tab=<tab>&<key>=<value>` links fill this input (the share button writes them)."""
    app = gradio_compat.root_block()
    if app is not None:
        _marked.setdefault(app, []).append(Linked(tab, key, component))
    return component


def marked(app: gr.Blocks) -> list[Linked]:
    """The inputs the tabs of `app` marked with `linked`, in the order they were built."""
    return list(_marked.get(app, []))


def values(request: gr.Request | None, tab: str) -> dict[str, str]:
    """The inputs a link asks for on this tab: {key: raw text}; {} when the link is for another tab."""
    params = dict(request.query_params) if request is not None else {}
    if tab_id(params.pop("tab", None)) != tab:
        return {}
    return params


def update(component, raw: str | None):
    """A link's text -> the component's new value (gr.skip() when absent or unreadable)."""
    if raw is None:
        return gr.skip()
    if isinstance(component, (gr.Slider, gr.Number)):
        try:
            number = float(raw)
        except ValueError:
            return gr.skip()
        low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
        if number != number or (low is not None and number < low) or (high is not None and number > high):
            return gr.skip()
        return number
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        choices = [c[1] if isinstance(c, tuple) else c for c in (component.choices or [])]
        return raw if raw in choices else gr.skip()
    return raw[:MAX_TEXT_CHARS]


# The server selects the linked tab; should that update reach the page before its tabs are drawn,
# this clicks the tab once they are (and stops as soon as it is selected).
OPEN_TAB_JS = """() => {
  const renamed = %s;
  const linked = () => {
    const tab = new URLSearchParams(location.search).get('tab') || location.hash.slice(1);
    return renamed[tab] || tab;
  };
  const want = linked();
  const select = (tries) => {
    // A '#<tab>' followed since the page opened wins: stop re-selecting the first link's tab.
    const now = linked();
    if (now !== want) return;
    const button = document.querySelector(`button[role=tab][data-tab-id="${want}"]`);
    if (button && button.getAttribute('aria-selected') === 'true') return;
    if (button) button.click();
    if (tries > 0) setTimeout(() => select(tries - 1), 300);
  };
  if (want) setTimeout(() => select(20), 300);
  window.addEventListener('hashchange', () => {  // a '#<tab>' link followed on the open page
    const tab = renamed[location.hash.slice(1)] || location.hash.slice(1);
    document.querySelector(`button[role=tab][data-tab-id="${tab}"]`)?.click();
  });
  return [location.hash];
}""" % json.dumps(RENAMED_TABS)

# The share button, in the browser: the link to the tab on screen with its marked inputs' values.
SHARE_JS = """(tab, ...values) => {
  const keys = %s;
  const url = new URL(window.location.href.split('#')[0]);
  url.search = '';
  url.searchParams.set('tab', tab);
  keys.forEach(([t, key], i) => {
    if (t === tab && values[i] !== null && values[i] !== undefined && values[i] !== '') {
      url.searchParams.set(key, String(values[i]));
    }
  });
  if (navigator.clipboard) navigator.clipboard.writeText(url.toString()).catch(() => {});
  return {__type__: 'update', value: url.toString(), visible: true};
}"""


def wire(app: gr.Blocks, tabs: gr.Tabs, current_tab: gr.Textbox, share: gr.Button, link: gr.Textbox,
         tab_ids: list[str]) -> None:
    """Call once, inside the app's Blocks, after its tabs are built: `?tab=<tab id>` (or
    `#<tab id>`) opens that tab and fills its marked inputs; `share` writes the link into `link`."""
    marks = marked(app)
    inputs = [m.component for m in marks]

    @ui.user_errors
    def open_link(hash_tab: str, request: gr.Request):
        tab = tab_id(request.query_params.get("tab") or (hash_tab or "").lstrip("#"))
        if tab not in tab_ids:
            return gr.skip(), gr.skip(), *(gr.skip() for _ in marks)
        asked = values(request, tab)
        updates = [update(m.component, asked.get(m.key)) if m.tab == tab else gr.skip() for m in marks]
        return gr.Tabs(selected=tab), tab, *updates

    app.load(open_link, [current_tab], [tabs, current_tab, *inputs], js=OPEN_TAB_JS, queue=False,
             api_visibility="private")
    keys = [[m.tab, m.key] for m in marks]
    share.click(None, [current_tab, *inputs], link, js=SHARE_JS % repr(keys), queue=False, api_visibility="private")
