"""The benchmark dashboards as a person sees them: served on localhost, opened in Chromium.

* the asv dashboard: a small history (the current install benchmarked under the
  last 3 commit hashes with ``--quick`` and a narrow ``--bench`` filter), published,
  made offline (``benchmarks/asv_offline.py``), served by ``http.server`` on an
  ephemeral port and opened in headless Chromium;
* the ``fastnn bench --quick --html`` report, served and opened the same way.

Each test saves screenshots in its temporary directory and prints their paths.
Needs the Debian packages ``chromium`` and ``chromium-driver`` and the Python
package ``selenium``; skipped when they are missing.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("FASTNN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FASTNN_CHROMEDRIVER", "/usr/bin/chromedriver")

#: The asv benchmarks actually run for the history (the others are listed, not run).
ASV_FILTER = r"^ops\.DenseForward\.|^startup\.timeraw_import_fastnn$"
GRAPHED = "ops.DenseForward.time_dense_forward"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser():
    pytest.importorskip("selenium")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            pytest.skip(f"{path} not installed (Debian packages chromium, chromium-driver)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 at an ephemeral port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def chromium(tmp_path: Path):
    """Headless Chromium driven by selenium, with a fresh profile and console logging."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def severe(entries, allowed=()):
    """SEVERE console entries, minus those whose message contains an allowed substring."""
    return [
        e for e in entries if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)
    ]


def screenshot(driver, path: Path, full_page: bool = True) -> Path:
    if full_page:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, max(1000, min(int(height) + 50, 12000)))
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def _run(cmd, env, timeout=600):
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _last_commits(n: int) -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "rev-list", "--first-parent", f"--max-count={n}", "HEAD"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if len(out) < n:
        pytest.skip(f"the repository has {len(out)} commit(s); the history test needs {n}")
    return out[::-1]


def test_asv_dashboard_in_browser(tmp_path):
    _require_browser()
    pytest.importorskip("asv")
    commits = _last_commits(3)
    results, html = tmp_path / "results", tmp_path / "html"
    conf = json.loads(_strip_comments((ROOT / "asv.conf.json").read_text()))
    conf.update(
        repo=str(ROOT),
        benchmark_dir=str(ROOT / conf["benchmark_dir"]),
        results_dir=str(results),
        html_dir=str(html),
        env_dir=str(tmp_path / "env"),
    )
    conf_path = tmp_path / "asv.conf.json"
    conf_path.write_text(json.dumps(conf))
    env = dict(
        os.environ,
        HOME=str(tmp_path / "home"),  # asv's machine file goes to $HOME/.asv-machine.json
        FASTNN_BENCH_QUICK="1",
        FASTNN_CACHE_DIR=str(tmp_path / "fastnn-cache"),
    )
    (tmp_path / "home").mkdir()
    asv = [sys.executable, "-m", "asv"]
    _run([*asv, "machine", "--yes", "--machine", "dashboard-test", "--config", str(conf_path)], env)
    for sha in commits:
        _run(
            [*asv, "run", "--config", str(conf_path), "--python=same", "--quick",
             "--machine", "dashboard-test", "--set-commit-hash", sha, "--bench", ASV_FILTER],
            env,
        )  # fmt: skip
    _run([*asv, "publish", "--config", str(conf_path)], env)
    _run([sys.executable, str(ROOT / "benchmarks" / "asv_offline.py"), str(html)], env)

    index = json.loads((html / "index.json").read_text())
    names = sorted(index["benchmarks"])
    discovered = sorted(json.loads((results / "benchmarks.json").read_text()))
    discovered.remove("version")
    assert names == discovered
    assert len(index["revision_to_hash"]) >= 3, index["revision_to_hash"]
    ran = [n for n in names if n == GRAPHED or n.startswith("startup.timeraw_import")]
    # benchmarks not run in this short history have no summary graph: asv requests
    # it anyway and gets a 404; anything else in the console is a real failure
    not_run = [f"graphs/summary/{n}.json" for n in names if n not in ran]

    with serve(html) as url, chromium(tmp_path) as driver:
        driver.get(url + "index.html")
        # the grid lists every benchmark once the JS has loaded index.json
        # grouped by module, each benchmark titled Class.method
        wait_for(
            lambda: GRAPHED.split(".", 1)[1] in driver.find_element("tag name", "body").text,
            what="the benchmark grid",
        )
        time.sleep(1.0)
        body = driver.find_element("tag name", "body").text
        shown = {n for n in names if n.split(".", 1)[1] in body}
        assert shown == set(names), f"missing from the grid: {sorted(set(names) - shown)}"
        screenshot(driver, tmp_path / "asv-grid.png")

        driver.get(url + "index.html#/summarylist")
        listed = wait_for(
            lambda: (t := driver.find_element("id", "summarylist-body").text) and GRAPHED in t,
            what="the benchmark list",
        )
        assert listed
        screenshot(driver, tmp_path / "asv-list.png")

        driver.set_window_size(1400, 1000)
        driver.get(url + "index.html#" + GRAPHED)
        canvases = wait_for(
            lambda: driver.find_elements("css selector", "#main-graph canvas"),
            what="the graph of " + GRAPHED,
        )
        assert any(c.size["width"] > 100 and c.size["height"] > 50 for c in canvases)
        time.sleep(1.0)
        screenshot(driver, tmp_path / "asv-graph.png", full_page=False)

        errors = severe(driver.get_log("browser"), allowed=not_run)
        assert not errors, errors


def _strip_comments(text: str) -> str:
    """asv.conf.json allows // comment lines; JSON does not."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def test_bench_report_in_browser(tmp_path):
    _require_browser()
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    env = dict(os.environ, FASTNN_CACHE_DIR=str(tmp_path / "fastnn-cache"))
    script = Path(sys.executable).parent / "fastnn"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "fastnn.tools.bench"]
    proc = _run([*cmd, "bench", "--quick", "--html", str(out)] if script.exists() else
                [*cmd, "--quick", "--html", str(out)], env, timeout=900)  # fmt: skip
    assert "HTML report:" in proc.stdout
    page = (out / "index.html").read_text()
    assert "https://" not in page and "http://" not in page  # self-contained: no network

    with serve(out) as url, chromium(tmp_path) as driver:
        driver.get(url + "index.html")
        assert driver.title == "fastnn bench report"
        images = driver.find_elements("css selector", "img.plot")
        # ladder + GFLOP/s (per op) and the training plots
        assert len(images) >= 3, len(images)
        for img in images:
            assert driver.execute_script("return arguments[0].naturalWidth", img) > 100
        for section in ("ladder", "gflops", "training"):
            assert driver.find_elements("css selector", f"#{section} img.plot"), section
        raw_rows = driver.find_elements("css selector", "#raw tbody tr")
        assert len(raw_rows) >= 10
        machine = driver.find_element("id", "machine").text
        for label in ("CPU", "cores", "GEMM", "numpy"):
            assert label in machine, label
        assert driver.find_elements("css selector", "#targets tbody tr")
        screenshot(driver, tmp_path / "bench-report.png")
        errors = severe(driver.get_log("browser"))
        assert not errors, errors
