"""Deep links (issue #14 item 6): the page's state in the URL query, restored on load and written by the browser.

Modules: :mod:`~app.link.query` (the keys and the reading of a query, every value through the input checks),
:mod:`~app.link.writer` (the browser steps that write the URL), :mod:`~app.link.deeplink` (the "link to this view"
row, the restore on load, the steps after a linked photo, and the wiring).
"""
