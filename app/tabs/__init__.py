"""The page's tabs, one module each: its layout (``build``), its handlers and its events (``wire``).

Each module names its tab (``ID``, used by links and code; ``LABEL``, shown) and holds a small dataclass of the tab's
components whose ``shares()`` lists those other areas read or write. :mod:`app.page` lays them out in its ``TABS``
order and wires them. No tab imports another, except the compare tab, whose update carries the swipe pictures and the
export JSON while their tabs are open.
"""
