"""Headless Chromium, offline: render comp's HTML reports to check them or to picture them.

Every run gets a fresh profile and flags that keep the browser off the network: no
background traffic, every host name unresolvable and every request sent to a dead proxy.
A page that needs anything from the network therefore renders without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from comp.errors import CompError
from comp.io import write_bytes

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL_HINT = "install Chromium (Debian/Ubuntu: apt-get install -y --no-install-recommends chromium) or set BROWSER_PATH"

OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9",  # nothing listens there: every http(s) request fails
    "--host-resolver-rules=MAP * ~NOTFOUND",  # and no host name resolves
)


def find_chromium() -> str | None:
    """Path of a Chrome or Chromium executable: ``$BROWSER_PATH`` first, then the PATH."""
    override = os.environ.get("BROWSER_PATH")
    if override:
        return override if shutil.which(override) else None
    return next((path for name in NAMES if (path := shutil.which(name))), None)


def chromium() -> str:
    """Like :func:`find_chromium`, but a clear :class:`CompError` when there is none."""
    path = find_chromium()
    if path is None:
        raise CompError(f"no Chrome or Chromium found; {INSTALL_HINT}")
    return path


def _run(html_path: "str | Path", args: list[str], budget_ms: int, timeout: float) -> subprocess.CompletedProcess:
    page = Path(html_path).resolve()
    if not page.exists():
        raise CompError(f"{page} does not exist")
    with tempfile.TemporaryDirectory(prefix="comp-chromium-") as profile:
        cmd = [chromium(), *OFFLINE_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, page.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=profile)
        except subprocess.TimeoutExpired:
            raise CompError(f"Chromium took over {timeout:.0f}s to render {page}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CompError(f"Chromium failed on {page} (exit {done.returncode}): {last}")
    return done


def render(html_path: "str | Path", png_path: "str | Path | None" = None, width: int = 1200, height: int = 900,
           budget_ms: int = 5000, timeout: float = 60) -> str:
    """Open a page offline, let its scripts run for ``budget_ms`` of virtual time, and
    return its DOM; with ``png_path``, also save a ``width`` x ``height`` screenshot."""
    with tempfile.TemporaryDirectory(prefix="comp-shot-") as tmp:
        shot = Path(tmp) / "shot.png"
        args = ["--dump-dom", f"--window-size={width},{height}"] + ([f"--screenshot={shot}"] if png_path else [])
        dom = _run(html_path, args, budget_ms, timeout).stdout
        if png_path:
            if not shot.exists():
                raise CompError(f"Chromium wrote no screenshot of {html_path}")
            write_bytes(png_path, shot.read_bytes())
    return dom
