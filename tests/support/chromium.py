"""Headless Chromium for the tests that render pages (Allure, the status page,
the reports), and a PNG reader enough to see a screenshot is not blank."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

# Headless, no sandbox (CI runs as root), nothing fetched beyond loopback; the
# virtual time budget lets the report's scripts load its data and render.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--hide-scrollbars",
    "--window-size=1400,1000",
    "--virtual-time-budget=15000",
)


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (Debian package `chromium`)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: `bash .ci/run` installs it")
        pytest.skip(message)
    return found


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG; enough to see it is not blank."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    pixels = b"".join(raw[row * stride + 1 : (row + 1) * stride] for row in range(0, height, 50))
    return width, height, pixels
