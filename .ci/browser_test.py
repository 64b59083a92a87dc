#!/usr/bin/env python3
"""Runs the notebooks in a real browser, as a person would, and checks what the page shows.

    .ci/browser_test.py               # every notebooks/*.ipynb, in name order
    .ci/browser_test.py 03_gpt2_scratch.ipynb ...   # only these (they still need the files
                                      # the earlier notebooks write into the work folder)
    .ci/browser_test.py --self-test   # synthetic notebooks that check the checks themselves

It copies the notebooks into build/browser/notebooks/ (Jupyter autosaves: the committed notebooks are
never opened), starts the classic Jupyter Notebook server on 127.0.0.1 with GPT_QUICK=1 and a fresh
GPT_WORKDIR (build/browser/work), opens each notebook in headless Chromium through Selenium, clicks
Cell → Run All, waits until every code cell has run and the kernel is idle, then checks the page:

  * no error output, no stderr output, no Go panic, goroutine dump or "exit status N" in any output;
  * every cell that calls .Train( shows div.gpt-train in its final state (data-step equal to
    data-max-steps) holding a table and an svg (the loss curve);
  * every cell that calls tutorial.Complete shows a .gpt-generate element with more than 20
    characters of visible text.

A full-page screenshot of each notebook goes to build/screenshots/NN_name.png, whatever the result.
Environment: BROWSER_TEST_TIMEOUT (seconds per notebook, default 900), CHROMIUM (default
/usr/bin/chromium), CHROMEDRIVER (default /usr/bin/chromedriver). Standard library and Selenium only.
"""

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "browser")
SHOTS = os.path.join(ROOT, "build", "screenshots")

SERVER_TIMEOUT = 60  # the Jupyter server answering /api/status
KERNEL_TIMEOUT = 180  # a notebook's page loaded and its kernel connected and idle
START_TIMEOUT = 30  # Run All having put the cells into execution
WINDOW = (1400, 1000)
MAX_SHOT_HEIGHT = 30000  # screenshots stop here (checked: Chromium draws a 1400×30000 viewport whole)

RE_PANIC = re.compile(r"^panic: .*$", re.M)
RE_GOROUTINE = re.compile(r"goroutine \d+ \[running\]")
RE_EXIT = re.compile(r"^exit status [1-9]\d*$", re.M)


def log(msg):
    print(msg, flush=True)


class TestFailure(Exception):
    """A notebook's run that could not complete (a timeout, a dead kernel): its message says why."""


# ---------------------------------------------------------------------------------------------------
# Files


def copy_notebook(src, dst):
    """Copies a notebook without its outputs and execution counts, so that only this run's show."""
    with open(src, encoding="utf-8") as f:
        nb = json.load(f)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(nb, f, ensure_ascii=False, indent=1)
        f.write("\n")


def go_notebook(cells):
    """A GoNB notebook (nbformat 4) of code cells given as source strings."""
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
             "source": src.splitlines(keepends=True)}
            for src in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Go (gonb)", "language": "go", "name": "gonb"},
            "language_info": {"name": "go"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


# ---------------------------------------------------------------------------------------------------
# The Jupyter server


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, notebook_dir, env, log_path):
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = "http://127.0.0.1:%d" % self.port
        exe = shutil.which("jupyter-notebook")
        cmd = [exe] if exe else [sys.executable, "-m", "notebook"]
        cmd += [
            "--no-browser",
            "--ip=127.0.0.1",
            "--port=%d" % self.port,
            "--port-retries=0",
            "--notebook-dir=" + notebook_dir,
            "--NotebookApp.token=" + self.token,
            "--NotebookApp.password=",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_file = open(log_path, "w", encoding="utf-8")
        # Its own process group, so that stopping it stops the kernels it started too.
        self.proc = subprocess.Popen(cmd, cwd=notebook_dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        self.log_path = log_path

    def api(self, method, path, timeout=10):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": "token " + self.token})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout=SERVER_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("the Jupyter server exited with status %d before answering; see %s"
                                  % (self.proc.returncode, self.log_path))
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = str(e)
            time.sleep(0.5)
        raise TestFailure("timed out after %ds waiting for the Jupyter server to answer %s/api/status (last: %s); see %s"
                          % (timeout, self.base, last, self.log_path))

    def check_classic(self):
        """The checks drive classic Notebook's page (Notebook 7 is JupyterLab's): refuse any other."""
        version = str((self.api("GET", "/api") or {}).get("version", "?"))
        if not re.match(r"[1-6]\.", version):
            raise TestFailure("the Jupyter server is Notebook %s; this test drives the classic Notebook (6.x): "
                              "install Debian's jupyter-notebook, or pip install 'notebook<7'" % version)
        return version

    def shutdown_kernels(self):
        """Deletes every session (and so its kernel): a finished notebook's kernel holds nothing we need."""
        try:
            for s in self.api("GET", "/api/sessions") or []:
                self.api("DELETE", "/api/sessions/" + s["id"], timeout=30)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            log("  (could not shut the kernels down: %s)" % e)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=15)
        self.log_file.close()


# ---------------------------------------------------------------------------------------------------
# The browser


def start_browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=%d,%d" % WINDOW, "--lang=en-US"):
        opts.add_argument(a)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    driver.set_window_size(*WINDOW)
    return driver


# The kernel's state as the page shows it: the indicator's icon, next to the kernel's name.
JS_KERNEL_STATE = r"""
var nb = window.Jupyter && Jupyter.notebook;
if (!nb || !nb._fully_loaded) return 'page loading';
var k = nb.kernel;
if (!k) return 'no kernel yet';
if (!k.is_connected()) return 'kernel ' + k.name + ' not connected';
var icon = document.getElementById('kernel_indicator_icon');
var cls = icon ? icon.className : 'no indicator';
if (cls !== 'kernel_idle_icon') return 'kernel ' + k.name + ' ' + cls;
return 'idle';
"""

# The code cells: source, prompt number ('*' while queued or running, null before running) and
# whether the page marks them running.
JS_CELLS = r"""
var nb = Jupyter.notebook, out = [];
nb.get_cells().forEach(function (c, i) {
  if (c.cell_type !== 'code') return;
  var n = c.input_prompt_number;
  out.push({index: i, source: c.get_text(),
            prompt: (n === undefined || n === null) ? null : String(n),
            running: c.element.hasClass('running')});
});
var icon = document.getElementById('kernel_indicator_icon');
return {cells: out, kernel: icon ? icon.className : '',
        connected: !!(nb.kernel && nb.kernel.is_connected())};
"""


def wait_for(what, timeout, probe, interval=0.5):
    """Calls probe until it returns (True, x); raises TestFailure naming what and the last state."""
    deadline = time.monotonic() + timeout
    state = None
    while True:
        ok, state = probe()
        if ok:
            return state
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %ds waiting for %s (last state: %s)" % (timeout, what, state))
        time.sleep(interval)


def wait_kernel_idle(driver, timeout=KERNEL_TIMEOUT):
    def probe():
        s = driver.execute_script(JS_KERNEL_STATE)
        return s == "idle", s
    wait_for("the notebook's kernel to be connected and idle", timeout, probe)


def run_all(driver):
    """Cell → Run All, through the menu bar."""
    driver.find_element(By.ID, "celllink").click()
    item = driver.find_element(By.CSS_SELECTOR, "#run_all_cells > a")
    wait_for("the Cell menu to open (Run All visible)", 10, lambda: (item.is_displayed(), "menu closed"), 0.2)
    item.click()


def wait_run_finished(driver, timeout):
    """Waits until Run All started, then until no code cell is queued or running and the kernel is
    idle, twice in a row a second apart (the kernel goes idle between cells for a moment)."""
    def started():
        s = driver.execute_script(JS_CELLS)
        return any(c["prompt"] is not None for c in s["cells"]), "no code cell queued"
    wait_for("Run All to put the cells into execution", START_TIMEOUT, started)

    deadline = time.monotonic() + timeout
    settled = 0
    disconnected_since = None
    while True:
        s = driver.execute_script(JS_CELLS)
        busy = [c for c in s["cells"] if c["prompt"] == "*" or c["running"]]
        if not busy and s["kernel"] == "kernel_idle_icon" and s["connected"]:
            settled += 1
            if settled >= 2:
                return s
        else:
            settled = 0
        now = time.monotonic()
        if s["connected"]:
            disconnected_since = None
        elif disconnected_since is None:
            disconnected_since = now
        elif now - disconnected_since > 60:
            raise TestFailure("the kernel has been disconnected for 60 s (indicator: %s); %s"
                              % (s["kernel"] or "none", describe_busy(busy)))
        if now >= deadline:
            raise TestFailure("timed out after %ds waiting for every code cell to finish and the kernel to be idle "
                              "(kernel indicator: %s); %s" % (timeout, s["kernel"] or "none", describe_busy(busy)))
        time.sleep(1)


def describe_busy(busy):
    if not busy:
        return "no cell still queued or running"
    more = " and %d more" % (len(busy) - 5) if len(busy) > 5 else ""
    return "still queued or running: " + ", ".join("cell %d %s" % (c["index"] + 1, first_line(c["source"]))
                                                   for c in busy[:5]) + more


def first_line(src):
    for line in src.splitlines():
        if line.strip():
            return repr(line.strip()[:60])
    return "''"


# ---------------------------------------------------------------------------------------------------
# The checks


# What each code cell shows: its error and stderr outputs, the text of its output area, and the
# gpt-train / gpt-generate elements in it.
JS_OUTPUTS = r"""
var res = [];
Jupyter.notebook.get_cells().forEach(function (c, i) {
  if (c.cell_type !== 'code') return;
  var out = c.element[0].querySelector('.output');
  var q = function (sel) { return out ? Array.prototype.slice.call(out.querySelectorAll(sel)) : []; };
  res.push({
    index: i,
    errors: q('.output_error').map(function (e) { return e.innerText; }),
    stderr: q('.output_stderr').map(function (e) { return e.innerText; }),
    text: out ? out.innerText : '',
    train: q('div.gpt-train').map(function (e) {
      return {step: e.getAttribute('data-step'), max: e.getAttribute('data-max-steps'),
              table: !!e.querySelector('table'), svg: !!e.querySelector('svg')};
    }),
    generate: q('.gpt-generate').map(function (e) { return e.innerText; })
  });
});
return res;
"""


def check_page(driver, cells, counts=None):
    """Problems of a finished run, as 'cell N: what' strings. cells: JS_CELLS's list. counts, a dict,
    gets how many code cells, training cells and generation cells were checked."""
    source = {c["index"]: c["source"] for c in cells}
    problems = []
    if counts is None:
        counts = {}
    counts.update(cells=len(cells), train=0, generate=0)

    def add(idx, what):
        problems.append("cell %d: %s" % (idx + 1, what))

    for c in cells:
        if c["source"].strip() and (c["prompt"] is None or not c["prompt"].isdigit()):
            add(c["index"], "was not executed (prompt In [%s])" % (c["prompt"] or " "))

    for o in driver.execute_script(JS_OUTPUTS):
        i, src = o["index"], source.get(o["index"], "")
        for e in o["errors"]:
            add(i, "error output: " + short(e))
        for e in o["stderr"]:
            add(i, "stderr output: " + short(e))
        text = "\n".join(line.rstrip() for line in o["text"].splitlines())
        m = RE_PANIC.search(text)
        if m:
            add(i, "Go panic: " + short(m.group(0)[len("panic: "):]))
        elif RE_GOROUTINE.search(text):
            add(i, "goroutine dump (a crash) in the output")
        m = RE_EXIT.search(text)
        if m:
            add(i, "program ended with " + m.group(0))

        if ".Train(" in src:
            counts["train"] += 1
            final = [t for t in o["train"]
                     if (t["step"] or "").strip() != "" and (t["step"] or "").strip() == (t["max"] or "").strip()
                     and t["table"] and t["svg"]]
            if not o["train"]:
                add(i, "training cell shows no div.gpt-train")
            elif not final:
                t = o["train"][-1]
                add(i, "div.gpt-train not final or incomplete: data-step=%r data-max-steps=%r table=%s svg=%s"
                    % (t["step"], t["max"], t["table"], t["svg"]))
        if "tutorial.Complete" in src:
            counts["generate"] += 1
            texts = [t.strip() for t in o["generate"]]
            if not texts:
                add(i, "generation cell shows no .gpt-generate")
            elif not any(len(t) > 20 for t in texts):
                add(i, ".gpt-generate text is too short (%d characters, want more than 20): %r"
                    % (max(len(t) for t in texts), texts[-1][:60]))
    # Several outputs of one cell may say the same thing.
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def short(s, n=160):
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 1] + "…"


# ---------------------------------------------------------------------------------------------------
# Full-page screenshots

# Classic Notebook lays the page out as a fixed header and a #site that scrolls inside the window.
# This puts everything in the normal flow, so the document is as tall as the notebook, the header
# sits once at the top instead of over the cells, and the page's own resize handler (which sets
# #site's height inline) cannot undo it.
JS_UNFOLD = r"""
var st = document.getElementById('browser-test-unfold');
if (!st) {
  st = document.createElement('style');
  st.id = 'browser-test-unfold';
  st.textContent =
    'html, body { height: auto !important; overflow: visible !important; position: static !important; }' +
    '#header { position: static !important; }' +
    '#site { height: auto !important; overflow: visible !important; position: static !important; }' +
    '#notebook { padding-bottom: 20px !important; }' +
    '.end_space { display: none !important; }' +
    '#notification_area, .dropdown-menu { display: none !important; }';
  document.head.appendChild(st);
}
if (document.activeElement) { document.activeElement.blur(); }
window.scrollTo(0, 0);
return Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight,
                          document.getElementById('header').offsetHeight +
                          document.getElementById('notebook').scrollHeight));
"""


def full_screenshot(driver, path):
    """Makes the viewport as tall as the unfolded page, then captures the viewport. (Chromium's
    captureBeyondViewport re-lays the page out while capturing, and CodeMirror then measures its
    editors one line short: the inputs came out clipped.)"""
    width, height, page = WINDOW[0], 0, 0
    try:
        for _ in range(3):  # the height may change once the viewport is tall (CodeMirror re-measures)
            page = int(driver.execute_script(JS_UNFOLD))
            h = max(WINDOW[1], min(page, MAX_SHOT_HEIGHT))
            if h == height:
                break
            height = h
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            time.sleep(0.5)  # let the page lay out at its new size
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "fromSurface": True})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    if page > MAX_SHOT_HEIGHT:
        log("    (the page is %d px tall: the screenshot shows its first %d px)" % (page, MAX_SHOT_HEIGHT))


# ---------------------------------------------------------------------------------------------------
# One notebook


def run_notebook(driver, server, rel_path, shot_path, timeout, counts):
    """Opens, runs and checks one notebook; returns its problems (empty: passed). counts: see check_page."""
    problems = []
    try:
        driver.get("%s/notebooks/%s?token=%s" % (server.base, rel_path, server.token))
        wait_kernel_idle(driver)
        run_all(driver)
        state = wait_run_finished(driver, timeout)
        problems = check_page(driver, state["cells"], counts)
    except TestFailure as e:
        problems = [str(e)]
        # What the cells that did finish show still says something: add it.
        try:
            done = [c for c in driver.execute_script(JS_CELLS)["cells"] if (c["prompt"] or "").isdigit()]
            problems += check_page(driver, done)
        except WebDriverException:
            pass
    except WebDriverException as e:
        problems = ["browser error: " + short(e.msg or str(e))]
    finally:
        try:
            full_screenshot(driver, shot_path)
        except WebDriverException as e:
            problems.append("could not take the screenshot: " + short(e.msg or str(e)))
        try:
            # Leave the page without the "unsaved changes" dialog.
            driver.execute_script("window.onbeforeunload = null;")
            driver.get("about:blank")
        except WebDriverException:
            pass
        server.shutdown_kernels()
    return problems


def run_all_notebooks(driver, server, items, timeout):
    """items: (relative path under build/browser, screenshot path, label). Returns {label: problems}
    and {label: counts} (see check_page)."""
    results, all_counts = {}, {}
    for rel, shot, label in items:
        log("%s: running in the browser…" % label)
        start = time.monotonic()
        counts = {}
        problems = run_notebook(driver, server, rel, shot, timeout, counts)
        secs = time.monotonic() - start
        results[label], all_counts[label] = problems, counts
        checked = (" (%d code cells, %d training block(s), %d generation block(s) checked)"
                   % (counts["cells"], counts["train"], counts["generate"])) if counts else ""
        log("%s: %s in %.0f s%s%s" % (label, "passed" if not problems else "FAILED", secs, checked,
                                      "" if not problems else "".join("\n    " + p for p in problems)))
        log("    screenshot: %s" % os.path.relpath(shot, ROOT))
    return results, all_counts


# ---------------------------------------------------------------------------------------------------
# The self-test: synthetic notebooks whose expected problems are known


HEADER = "%noautoget\n!*gpt-workspace"
GONBUI = 'import "github.com/janpfeifer/gonb/gonbui"\n\n'
# GoNB stops reading a cell's display pipe when its program exits: a program syncs after its last
# display, as lib/progress does (Live.Final), or the display may be lost.
SYNC = "\ngonbui.Sync()"

SELF_TESTS = [
    # (name, cells, substrings that must each appear in one problem; empty: must pass)
    ("selftest_pass.ipynb", [
        HEADER,
        GONBUI + "%%\n// trainer.Train(ctx) stands here in a real notebook.\n"
        'gonbui.DisplayHTML(`<div class="gpt-train" data-step="3" data-max-steps="3"><table><tr><td>step 3</td></tr></table>'
        '<svg width="100" height="40"><polyline points="0,0 50,20 100,30" stroke="black" fill="none"/></svg></div>`)' + SYNC,
        GONBUI + "%%\n// tutorial.Complete(m, tok, prompt, opts) stands here in a real notebook.\n"
        'gonbui.DisplayHTML(`<div class="gpt-generate"><b>Мне нравится</b> текст, который модель продолжила.</div>`)' + SYNC,
    ], []),
    ("selftest_missing.ipynb", [
        HEADER,
        '%%\n// trainer.Train(ctx)\nfmt.Println("trained, but no HTML")',
        '%%\n// tutorial.Complete(...)\nfmt.Println("generated, but no HTML: a long enough line of text")',
    ], ["no div.gpt-train", "no .gpt-generate"]),
    ("selftest_not_final.ipynb", [
        HEADER,
        GONBUI + "%%\n// trainer.Train(ctx)\n"
        'gonbui.DisplayHTML(`<div class="gpt-train" data-step="2" data-max-steps="3"><table></table><svg></svg></div>`)' + SYNC,
        GONBUI + "%%\n// trainer.Train(ctx)\n"
        'gonbui.DisplayHTML(`<div class="gpt-train" data-step="3" data-max-steps="3"><table></table></div>`)' + SYNC,
        GONBUI + "%%\n// tutorial.Complete(...)\n"
        'gonbui.DisplayHTML(`<div class="gpt-generate">short</div>`)' + SYNC,
    ], ["data-step='2' data-max-steps='3'", "svg=False", "too short"]),
    ("selftest_crash.ipynb", [
        HEADER,
        '%%\nfmt.Fprintln(os.Stderr, "a warning on stderr")',
        '%%\npanic("boom")',
        "%%\nos.Exit(3)",
    ], ["stderr output", "Go panic: boom", "exit status 3"]),
]


def self_test(driver, server, timeout):
    folder = os.path.join(BUILD, "selftest")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    items = []
    for name, cells, _ in SELF_TESTS:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            json.dump(go_notebook(cells), f, ensure_ascii=False, indent=1)
        items.append(("selftest/" + name, os.path.join(SHOTS, name.replace(".ipynb", ".png")), name))
    results, counts = run_all_notebooks(driver, server, items, timeout)
    failed = 0
    log("self-test: do the checks find what they must?")
    for name, _, want in SELF_TESTS:
        got, c = results[name], counts[name]
        if not want:
            # It must pass, having checked its blocks (not for want of them).
            if got:
                verdict = "expected to pass, got: " + "; ".join(got)
            elif c.get("train") != 1 or c.get("generate") != 1:
                verdict = "passed without checking one training and one generation block (%s)" % c
            else:
                verdict = None
            msg = verdict or "passes, one training and one generation block checked"
        else:
            missing = [w for w in want if not any(w in p for p in got)]
            verdict = ("does not report " + ", ".join(repr(w) for w in missing)) if missing else None
            msg = verdict or "reports " + ", ".join(repr(w) for w in want)
        if verdict:
            failed += 1
        log("  %s %s: %s" % ("BAD " if verdict else "ok  ", name, msg))
    return failed


# ---------------------------------------------------------------------------------------------------


def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebook file names in notebooks/ (default: all)")
    ap.add_argument("--self-test", action="store_true",
                    help="run synthetic notebooks that check the checks, instead of the tutorial's")
    args = ap.parse_args()

    timeout = int(os.environ.get("BROWSER_TEST_TIMEOUT", "900"))
    os.makedirs(BUILD, exist_ok=True)
    os.makedirs(SHOTS, exist_ok=True)
    workdir = os.path.join(BUILD, "work")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)

    items = []
    if not args.self_test:
        nbdir = os.path.join(BUILD, "notebooks")
        shutil.rmtree(nbdir, ignore_errors=True)
        os.makedirs(nbdir)
        src_dir = os.path.join(ROOT, "notebooks")
        names = args.notebooks or sorted(n for n in os.listdir(src_dir) if n.endswith(".ipynb"))
        for name in names:
            name = os.path.basename(name)
            src = os.path.join(src_dir, name)
            if not os.path.isfile(src):
                log("no notebook %s" % os.path.relpath(src, ROOT))
                return 2
            copy_notebook(src, os.path.join(nbdir, name))
            items.append(("notebooks/" + name, os.path.join(SHOTS, name.replace(".ipynb", ".png")), name))

    env = dict(os.environ, GPT_QUICK="1", GPT_WORKDIR=workdir)
    env.setdefault("GOTOOLCHAIN", "go1.27.3")
    env.setdefault("GOEXPERIMENT", "simd")

    server = driver = None
    # Ctrl-C and SIGTERM both unwind through the finally below.
    signal.signal(signal.SIGTERM, on_sigterm)
    start = time.monotonic()
    try:
        server = Server(BUILD, env, os.path.join(BUILD, "jupyter.log"))
        log("Jupyter Notebook at %s (log: %s), GPT_QUICK=1, GPT_WORKDIR=%s"
            % (server.base, os.path.relpath(server.log_path, ROOT), os.path.relpath(workdir, ROOT)))
        server.wait_ready()
        notebook_version = server.check_classic()
        driver = start_browser()
        log("Notebook %s, Chromium %s, chromedriver %s" % (
            notebook_version, driver.capabilities.get("browserVersion", "?"),
            driver.capabilities.get("chrome", {}).get("chromedriverVersion", "?").split(" ")[0]))
        if args.self_test:
            failed = self_test(driver, server, timeout)
            log("self-test: %s in %.0f s" % ("passed" if not failed else "%d case(s) FAILED" % failed,
                                            time.monotonic() - start))
            return 1 if failed else 0
        results, _ = run_all_notebooks(driver, server, items, timeout)
    except TestFailure as e:
        log("FAILED: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001 — stopping, whatever happened
                pass
        if server is not None:
            server.stop()

    failed = [n for n, p in results.items() if p]
    log("%d notebook(s) in %.0f s: %d passed, %d failed%s" % (
        len(results), time.monotonic() - start, len(results) - len(failed), len(failed),
        (" (" + ", ".join(failed) + ")") if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
