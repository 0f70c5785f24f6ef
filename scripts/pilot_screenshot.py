"""The README's screenshot of the review page: a live ``fusionbrain serve``, a few word images
uploaded, one corrected with the keyboard, taken with Debian's chromium through Playwright.

    python scripts/pilot_screenshot.py --model DIR --images A.png B.png ... \
        [--out docs/img/pilot-review.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KEY = "screenshot-key-1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--images", type=Path, nargs="+", required=True)
    ap.add_argument("--correct", default="", help="text typed into the first item")
    ap.add_argument("--out", type=Path, default=Path("docs/img/pilot-review.png"))
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()

    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "key").write_text(KEY)
        proc = subprocess.Popen([sys.executable, "-m", "fusionbrain.cli", "serve", "--model",
                                 str(args.model), "--db", str(Path(tmp) / "pilot.sqlite"),
                                 "--port", str(args.port), "--api-key-file",
                                 str(Path(tmp) / "key")])
        url = f"http://127.0.0.1:{args.port}"
        try:
            for _ in range(600):
                try:
                    if urllib.request.urlopen(url + "/readyz", timeout=2).status == 200:
                        break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1100, "height": 640})
                page.goto(url + "/review")
                page.fill("#key", KEY)
                page.click("#login-form button")
                page.fill("#reviewer", "Vera")
                page.set_input_files("#files", [str(p) for p in args.images])
                page.click("#upload")
                rows = page.locator(".item")
                expect(rows).to_have_count(len(args.images), timeout=120_000)
                rows.nth(0).locator("input.text").click()
                if args.correct:
                    page.keyboard.press("Control+a")
                    page.keyboard.type(args.correct)
                page.keyboard.press("Enter")
                page.keyboard.press("Enter")
                expect(rows.nth(1).locator(".badge")).not_to_have_text("new")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
