"""The browser side of a deep link (see :mod:`app.link.deeplink`): the JavaScript steps that write the page state into
the URL, with ``history.replaceState`` (no reload), and into the copyable "Link to this view" field.

After every change of a linked control, a step (:func:`writer_js`) queues its key's edit of the query;
:data:`LINK_WRITE_DELAY_MS` after the last change the edits are applied and the URL written once.
"""

from __future__ import annotations

import json

WRITE_URL_JS = """(query) => {
  const url = location.pathname + (query.toString() ? "?" + query.toString() : "") + location.hash;
  history.replaceState(history.state, "", url);
  const box = document.querySelector("#link textarea");
  if (box) box.value = location.href;
}"""
"""Browser: put a ``URLSearchParams`` into the address bar (no reload) and into the "Link to this view" field."""


LINK_WRITE_DELAY_MS = 200
"""How long the browser waits, after the last change, before it writes the URL: one write after a burst of slider
moves, and none while the moved box is being drawn (``bench/bench_browser.py`` measured ~25 ms per write on that
path when every move wrote at once)."""


def writer_js(key: str, wait_ms: int = 0, first_tab: str = "") -> str:
    """The browser-only step that writes one key of the page state into the URL (the others stay as they are).

    Args:
        key: ``"example"`` (its input is the hidden example name; ``""`` for an upload, which also drops
            ``class``), ``"resolution"`` (the menu's ``"448/16"``: written as ``input_size`` and ``output_stride``),
            ``"tab"`` (no input: the id of the selected tab button of the first tab list, its ``data-tab-id``, read
            ``wait_ms`` after the event, as a tab click marks its button a moment after the event fires; the
            ``first_tab``, open when the page loads, is written as no key), or a :data:`LINK_KEYS` key with a
            target (its component's value; ``class`` only while the photo is an example).

    One input per step, not the whole state: gathering ten inputs after every slider move cost the page
    ~50 ms before the moved box was drawn (``bench/bench_browser.py``, measured). The step only queues its
    edit of the query (``window.__camLink``); the edits are applied, in order, and the URL written once
    :data:`LINK_WRITE_DELAY_MS` after the last of them.
    """
    prelude, edit = {
        "example": ("", 'if (value) query.set("example", value);\n'
                        '    else { query.delete("example"); query.delete("class"); }'),
        "resolution": ('const [size, stride] = String(value || "").split("/");',
                       'if (size && stride) { query.set("input_size", size); query.set("output_stride", stride); }'),
        "tab": (f"""await new Promise((done) => setTimeout(done, {int(wait_ms)}));
  const selected = document.querySelector('[role="tablist"] [role="tab"][aria-selected="true"]');
  const tab = selected ? selected.dataset.tabId : undefined;""",
                f'if (tab && tab !== {json.dumps(first_tab)}) query.set("tab", tab); else query.delete("tab");'),
        "class": ("", 'if (value && query.has("example")) query.set("class", String(value));\n'
                      '    else query.delete("class");'),
    }.get(
        key,
        ("", f'if (value === null || value === undefined || value === "") query.delete("{key}"); '
             f'else query.set("{key}", String(value));'),
    )  # fmt: skip
    return f"""async (value) => {{
  {prelude}
  const link = window.__camLink || (window.__camLink = {{edits: [], timer: 0}});
  link.edits.push((query) => {{ {edit} }});
  clearTimeout(link.timer);
  link.timer = setTimeout(() => {{
    const query = new URLSearchParams(location.search);
    for (const apply of link.edits.splice(0)) apply(query);
    ({WRITE_URL_JS})(query);
  }}, {LINK_WRITE_DELAY_MS});
}}"""
