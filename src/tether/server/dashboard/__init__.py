"""The gateway's dashboard: server-rendered pages over the request log and the prompt registry.

No JavaScript and no front-end build: Jinja2 templates (autoescaped) and inline SVG charts whose
geometry is computed in Python. Admins only (see `access.py`).
"""
