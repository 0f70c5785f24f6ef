"""A live ``fusionbrain serve`` on 127.0.0.1: kill -9 loses no confirmed correction, and a
real browser (Debian's chromium driven by Playwright) reviews with the keyboard."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from fusionbrain.model import FusionBrain
from fusionbrain.serve.inference import png_bytes
from fusionbrain.serve.store import Store

KEY = "live-test-key-42"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FOCUSED = re.compile(r"\bfocused\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def word_png(text: str) -> bytes:
    im = Image.new("L", (90, 28), 255)
    ImageDraw.Draw(im).text((4, 8), text, fill=0)
    return png_bytes(im)


class Server:
    def __init__(self, model: Path, db: Path, key_file: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fusionbrain.cli", "serve", "--model", str(model), "--db",
             str(db), "--port", str(self.port), "--api-key-file", str(key_file), "--threads", "1"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.wait("/healthz")

    def call(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {KEY}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def wait(self, path: str, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, "server exited"
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{path} not ready")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("live")
    FusionBrain("tiny", tasks=["HTR"]).save_pretrained(root / "model")
    (root / "key").write_text(KEY + "\n")
    return root


def test_kill9_loses_no_confirmed_correction(setup, tmp_path):
    db = tmp_path / "pilot.sqlite"
    store = Store(db)  # items as an upload leaves them (model reading = version 1)
    ids = [store.add_item(store.put_image(word_png(w)), f"{w}.png", "b", "?", 0.5, [0.5], None)
           for w in ("alpha", "beta", "gamma", "delta")]
    store.close()
    server = Server(setup / "model", db, setup / "key", tmp_path / "server.log")
    try:
        confirmed = {}
        for i, item_id in enumerate(ids):
            text = f"fixed {i}"
            status, body = server.call(f"/api/items/{item_id}/review",
                                       {"text": text, "reviewer": "kim", "base_version": 1})
            assert status == 200, body
            confirmed[item_id] = text
        server.kill9()  # right after the last answer: no clean shutdown, no checkpoint
    finally:
        server.stop()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    server = Server(setup / "model", db, setup / "key", tmp_path / "server.log")
    try:
        for item_id, text in confirmed.items():
            status, body = server.call(f"/api/items/{item_id}")
            assert status == 200
            assert body["text"] == text and body["status"] == "corrected"
            assert [v["reviewer"] for v in body["versions"]] == [None, "kim"]
            assert Path(store.image_path(body["image_sha"])).is_file()
    finally:
        server.stop()


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="Debian's chromium is not installed (scripts/setup.sh installs it "
                           "as root with apt-get)")
def test_browser_review_with_the_keyboard(setup, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    words = []
    for w in ("cat", "house", "tree"):
        p = tmp_path / f"{w}.png"
        p.write_bytes(word_png(w))
        words.append(str(p))
    server = Server(setup / "model", tmp_path / "pilot.sqlite", setup / "key",
                    tmp_path / "server.log")
    shot = Path(os.environ.get("FUSIONBRAIN_SCREENSHOT", tmp_path / "review.png"))
    try:
        server.wait("/readyz")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1100, "height": 560})
            page.goto(server.url + "/review")
            page.fill("#key", KEY)
            page.click("#login-form button")
            page.fill("#reviewer", "Vera")
            page.set_input_files("#files", words)
            page.click("#upload")
            rows = page.locator(".item")
            expect(rows).to_have_count(3, timeout=60_000)
            expect(page.locator("#msg")).to_contain_text("Uploaded 3")
            # item 1: correct it with the keyboard; Enter saves and moves on
            first = rows.nth(0).locator("input.text")
            first.click()
            page.keyboard.press("Control+a")
            page.keyboard.type("cat")
            page.keyboard.press("Enter")
            expect(rows.nth(0).locator(".badge")).to_have_text("corrected")
            expect(rows.nth(1)).to_have_class(FOCUSED, timeout=10_000)
            # item 2: confirm as read, then Ctrl+Z undoes that confirm
            page.keyboard.press("Enter")
            expect(rows.nth(1).locator(".badge")).to_have_text("confirmed")
            page.keyboard.press("Control+z")
            expect(rows.nth(1).locator(".badge")).to_have_text("new")
            # arrows move between items
            page.keyboard.press("ArrowDown")
            page.keyboard.press("ArrowUp")
            page.keyboard.press("ArrowUp")
            expect(rows.nth(0)).to_have_class(FOCUSED)
            # reload: the correction is there
            page.reload()
            rows = page.locator(".item")
            expect(rows).to_have_count(3, timeout=30_000)
            expect(rows.nth(0).locator("input.text")).to_have_value("cat")
            expect(rows.nth(0).locator(".badge")).to_have_text("corrected")
            expect(rows.nth(1).locator(".badge")).to_have_text("new")
            # a second reviewer's stale save is refused and the page says so
            status, _ = server.call(f"/api/items/{rows.nth(2).get_attribute('data-id')}/review",
                                    {"text": "tree", "reviewer": "Oleg", "base_version": 1})
            assert status == 200
            rows.nth(2).locator("input.text").click()
            page.keyboard.press("Enter")
            expect(page.locator("#msg")).to_contain_text("Conflict")
            page.screenshot(path=str(shot))
            # the OpenAPI page renders offline (Swagger UI from a PyPI package, the cookie)
            page.goto(server.url + "/docs")
            expect(page.get_by_text("/v1/htr", exact=True).first).to_be_visible(timeout=30_000)
            browser.close()
        assert shot.stat().st_size > 1000
        print(f"screenshot: {shot}")
    finally:
        server.stop()
