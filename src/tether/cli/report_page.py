"""A self-contained HTML report page: a chart (PNG, inlined) above the caller's content.

Nothing is fetched when it is opened (no CDN, a Content-Security-Policy that allows only the
inlined image and styles); the caller escapes what it puts in `body`."""

from __future__ import annotations

import base64
import html

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.n{text-align:right}"
    "tr.total td{font-weight:bold;border-top:2px solid #333}img{max-width:100%}"
)


def report_page(title: str, png: bytes, body: str, *, intro: str = "") -> str:
    """`intro` goes between the title and the chart, `body` after the chart (both HTML)."""
    e = html.escape
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>{_STYLE}</style></head>
<body><h1>{e(title)}</h1>
{intro}<img alt="{e(title)}" src="data:image/png;base64,{image}">
{body}
</body></html>
"""
