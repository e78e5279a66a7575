"""``synthetic serve``: a long-lived runner with a history, ``/metrics`` and a status page.

- `command`: the wiring; `loop`: rounds one after another; `runner`, `zygote`,
  `child`, `watch`: how a round runs (forked from a warm process, watched by it);
- `app`: the web edge (Starlette, served by uvicorn); `page`, `sparkline`: the
  HTML and SVG (pure); `metrics`: ``/metrics``; `view`, `series`, `incidents`:
  what the edge reads;
- `settings`: the ``[serve]`` table.
"""
