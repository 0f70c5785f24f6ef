"""The pilot service through FastAPI's TestClient: every endpoint and every error code."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from fusionbrain.model import FusionBrain
from fusionbrain.serve.app import Settings, create_app
from fusionbrain.serve.segmentation import split_lines

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def png(text: str = "hello", size: tuple[int, int] = (96, 30), mode: str = "L") -> bytes:
    im = Image.new(mode, size, 255 if mode == "L" else "white")
    ImageDraw.Draw(im).text((4, 8), text, fill=0 if mode == "L" else "black")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def page_png(lines: int = 3) -> bytes:
    im = Image.new("L", (400, 60 + 50 * lines), 255)
    d = ImageDraw.Draw(im)
    for k in range(lines):
        d.text((20, 40 + 50 * k), f"line number {k} of the page", fill=0)
    d.line([(0, 20), (399, 20)], fill=0, width=1)  # a ruled line: not a text line
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = FusionBrain("tiny")
    d = tmp_path_factory.mktemp("model")
    model.save_pretrained(d)
    return d, model


@pytest.fixture(scope="module")
def client(model_dir, tmp_path_factory):
    d, model = model_dir
    db = tmp_path_factory.mktemp("pilot") / "pilot.sqlite"
    settings = Settings(model_dir=d, db=db, api_key=KEY, max_body_bytes=1 << 20,
                        max_pixels=1_000_000, max_items=8, max_pending=6, watch_interval_s=0.1)
    with TestClient(create_app(settings, model=model)) as c:
        for _ in range(200):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def files(*items: tuple[str, bytes]) -> list:
    return [("files", (name, data, "image/png")) for name, data in items]


# -- probes, auth, docs, metrics -------------------------------------------------------------
def test_probes_need_no_key_everything_else_does(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["model_version"] == 1
    for method, path in [("get", "/metrics"), ("get", "/docs"), ("get", "/openapi.json"),
                         ("post", "/v1/htr"), ("post", "/v1/c2c"), ("get", "/api/items"),
                         ("get", "/api/models"), ("get", "/api/export.csv")]:
        r = getattr(client, method)(path)
        assert r.status_code == 401, path
        assert "API key" in r.json()["error"]
        r = getattr(client, method)(path, headers={"Authorization": "Bearer wrong-key"})
        assert r.status_code == 401, path


def test_docs_and_openapi(client):
    page = client.get("/docs", headers=AUTH)
    assert page.status_code == 200 and "cdn" not in page.text  # offline: no CDN
    js = client.get("/docs/assets/swagger-ui-bundle.js", headers=AUTH)
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 401
    assert client.get("/docs/assets/index.html", headers=AUTH).status_code == 404
    spec = client.get("/openapi.json", headers=AUTH).json()
    for p in ("/v1/htr", "/v1/vqa", "/v1/zsod", "/v1/c2c", "/api/items/{item_id}/review"):
        assert p in spec["paths"]


def test_login_cookie_for_the_page(model_dir, tmp_path):
    d, model = model_dir
    app = create_app(Settings(model_dir=d, db=tmp_path / "p.sqlite", api_key=KEY), model=model)
    with TestClient(app) as c:
        assert c.post("/api/login", json={"key": "nope"}).status_code == 401
        assert c.get("/api/items").status_code == 401
        assert c.post("/api/login", json={"key": KEY}).status_code == 200
        assert c.get("/api/items").status_code == 200  # the cookie now
        page = c.get("/review")
        assert page.status_code == 200 and "review.js" in page.text
        assert c.get("/review/review.js").status_code == 200
        assert c.get("/review/secret.py").status_code == 404


# -- inference -------------------------------------------------------------------------------
def test_htr_batch_matches_single_and_confidence_in_range(client):
    r = client.post("/v1/htr", files=files(("a.png", png("hello")), ("b.png", png("world"))),
                    headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["predictions"]) == {"a.png", "b.png"}
    assert all(0.0 <= c <= 1.0 for c in body["confidence"].values())
    for name in ("a.png", "b.png"):
        assert len(body["char_confidence"][name]) == len(body["predictions"][name])
    single = client.post("/v1/htr", files=files(("a.png", png("hello"))), headers=AUTH).json()
    assert single["predictions"]["a.png"] == body["predictions"]["a.png"]


def test_htr_errors(client):
    cases = [
        (files(("x.png", b"not an image at all")), 422, "x.png: not a readable image"),
        (files(("e.png", b"")), 422, "e.png: empty file"),
        (files(("big.png", png(size=(2000, 1000)))), 413, "over the limit of 1000000 pixels"),
        (files(*[(f"{i}.png", png()) for i in range(9)]), 413, "9 images in one request"),
        (files(("a.png", png()), ("a.png", png())), 422, "a.png: file name given twice"),
    ]
    for payload, code, msg in cases:
        r = client.post("/v1/htr", files=payload, headers=AUTH)
        assert r.status_code == code, r.text
        assert msg in r.json()["error"]
    r = client.post("/v1/htr", headers=AUTH)  # no files field at all
    assert r.status_code == 422 and "files" in r.json()["error"]


def test_body_limit_413(client):
    big = b"\x89PNG" + b"0" * (1 << 20)
    r = client.post("/v1/htr", files=files(("a.png", big)), headers=AUTH)
    assert r.status_code == 413 and "request body over the limit" in r.json()["error"]


def test_busy_503_with_retry_after_and_timeout_504(client):
    # 7 items > max_pending 6: refused up front, nothing queued
    r = client.post("/v1/htr", files=files(*[(f"{i}.png", png()) for i in range(7)]),
                    headers=AUTH)
    assert r.status_code in (413, 503)  # 7 <= max_items 8, so it is the pending bound
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    settings = client.app.state.settings
    old = settings.request_timeout_s
    settings.request_timeout_s = 1e-6
    try:
        r = client.post("/v1/htr", files=files(("a.png", png())), headers=AUTH)
    finally:
        settings.request_timeout_s = old
    assert r.status_code == 504 and "request took over" in r.json()["error"]


def test_other_tasks(client):
    photo = png("x", (120, 90), "RGB")
    r = client.post("/v1/vqa", files=files(("p.png", photo)), headers=AUTH,
                    data={"questions": json.dumps({"0": {"file_name": "p.png",
                                                         "question": "What colour?"}})})
    assert r.status_code == 200, r.text
    assert set(r.json()["predictions"]) == {"0"}
    r = client.post("/v1/zsod", files=files(("p.png", photo)), headers=AUTH,
                    data={"requests": json.dumps({"p.png": ["red box", "cat"]})})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"]["p.png"]
    assert set(pred) == {"red box", "cat"}
    r = client.post("/v1/c2c", json={"0": "int f ( int x ) { return x ; }"}, headers=AUTH)
    assert r.status_code == 200 and isinstance(r.json()["predictions"]["0"], str)


def test_other_tasks_bad_json(client):
    photo = png("x", (120, 90), "RGB")
    r = client.post("/v1/vqa", files=files(("p.png", photo)), headers=AUTH,
                    data={"questions": "{not json"})
    assert r.status_code == 422 and r.json()["error"].startswith("questions: malformed JSON")
    r = client.post("/v1/vqa", files=files(("p.png", photo)), headers=AUTH,
                    data={"questions": json.dumps({"0": {"file_name": "q.png", "question": "?"}})})
    assert r.status_code == 422 and "not uploaded" in r.json()["error"]
    r = client.post("/v1/zsod", files=files(("p.png", photo)), headers=AUTH,
                    data={"requests": json.dumps({"p.png": "cat"})})
    assert r.status_code == 422 and "list of phrases" in r.json()["error"]
    r = client.post("/v1/c2c", content=b"{oops", headers={**AUTH,
                                                          "Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in r.json()["error"]
    r = client.post("/v1/c2c", json={"0": 5}, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"].startswith("0:")


def test_metrics(client):
    client.post("/v1/htr", files=files(("a.png", png())), headers=AUTH)
    text = client.get("/metrics", headers=AUTH).text
    assert 'fusionbrain_requests_total{path="/v1/htr",status="200"}' in text
    assert 'fusionbrain_request_seconds_bucket{le="0.005",task="HTR"}' in text
    assert "fusionbrain_queue_items 0.0" in text
    assert "fusionbrain_model_version 1.0" in text
    assert 'fusionbrain_batch_size_count{task="HTR"}' in text


# -- review ------------------------------------------------------------------------------------
def test_review_flow_history_conflict_undo_export(client):
    r = client.post("/api/uploads", files=files(("w1.png", png("one")), ("w2.png", png("two"))),
                    headers=AUTH)
    assert r.status_code == 200, r.text
    a, b = r.json()["items"]
    assert a["status"] == "new" and a["version"] == 1 and a["versions"][0]["model_version"] == 1
    # confirm = save the model's reading unchanged; correct = save another text
    r = client.post(f"/api/items/{a['id']}/review", headers=AUTH,
                    json={"text": a["text"], "reviewer": "anna", "base_version": 1})
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = client.post(f"/api/items/{b['id']}/review", headers=AUTH,
                    json={"text": "two", "reviewer": "anna", "base_version": 1})
    assert r.json()["status"] == "corrected" and r.json()["version"] == 2
    # a second reviewer who loaded version 1 does not silently overwrite it
    r = client.post(f"/api/items/{b['id']}/review", headers=AUTH,
                    json={"text": "tvo", "reviewer": "boris", "base_version": 1})
    assert r.status_code == 409
    assert "changed since you loaded it" in r.json()["error"] and "anna" in r.json()["error"]
    assert r.json()["item"]["text"] == "two"
    r = client.post(f"/api/items/{b['id']}/review", headers=AUTH,
                    json={"text": "TWO", "reviewer": "boris", "base_version": 2})
    assert r.status_code == 200
    hist = client.get(f"/api/items/{b['id']}", headers=AUTH).json()["versions"]
    assert [(v["text"], v["reviewer"]) for v in hist[1:]] == [("two", "anna"), ("TWO", "boris")]
    assert hist[0]["reviewer"] is None and hist[0]["model_version"] == 1
    # undo the last save: a new version, history kept
    r = client.post(f"/api/items/{b['id']}/undo", headers=AUTH,
                    json={"reviewer": "boris", "base_version": 3})
    assert r.status_code == 200 and r.json()["text"] == "two" and r.json()["version"] == 4
    assert len(r.json()["versions"]) == 4
    r = client.post(f"/api/items/{b['id']}/undo", headers=AUTH,
                    json={"reviewer": "boris", "base_version": 3})
    assert r.status_code == 409
    assert client.post("/api/items/99999/review", headers=AUTH,
                       json={"text": "x", "reviewer": "a", "base_version": 1}).status_code == 404
    r = client.post(f"/api/items/{a['id']}/review", headers=AUTH,
                    json={"text": "x", "reviewer": "", "base_version": 2})
    assert r.status_code == 422 and "reviewer" in r.json()["error"]
    # lowest confidence first: new items before reviewed ones
    r = client.get("/api/items?order=confidence", headers=AUTH).json()
    statuses = [it["status"] for it in r["items"]]
    assert statuses == sorted(statuses, key=lambda s: s != "new")
    assert client.get("/api/items?order=bogus", headers=AUTH).status_code == 422
    # image served content-addressed
    img = client.get(f"/api/images/{a['image_sha']}", headers=AUTH)
    assert img.status_code == 200 and img.content[:4] == b"\x89PNG"
    assert client.get("/api/images/../../etc", headers=AUTH).status_code == 404
    # exports
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export.csv", headers=AUTH).text)))
    assert {(r["name"], r["text"], r["status"]) for r in rows} >= {
        ("w1.png", a["text"], "confirmed"), ("w2.png", "two", "corrected")}
    z = zipfile.ZipFile(io.BytesIO(client.get("/api/export.zip", headers=AUTH).content))
    truth = json.loads(z.read("true_HTR.json"))
    assert "two" in truth.values()
    assert all(f"input/HTR/images/{k}" in z.namelist() for k in truth)
    assert client.get("/api/reviewers", headers=AUTH).json()["reviewers"][0]["name"] == "anna"


def test_page_upload_is_split_into_lines(client):
    assert len(split_lines(Image.open(io.BytesIO(page_png(3))))) == 3
    r = client.post("/api/uploads", files=files(("scan.png", page_png(3))),
                    data={"mode": "page"}, headers=AUTH)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [it["name"] for it in items] == [f"scan.png#line{k}" for k in (1, 2, 3)]
    assert json.loads(items[0]["source"])["page"] == "scan.png"
    blank = Image.new("L", (200, 200), 255)
    buf = io.BytesIO()
    blank.save(buf, "PNG")
    r = client.post("/api/uploads", files=files(("blank.png", buf.getvalue())),
                    data={"mode": "page"}, headers=AUTH)
    assert r.status_code == 422 and "no text lines" in r.json()["error"]
    r = client.post("/api/uploads", files=files(("a.png", png())), data={"mode": "book"},
                    headers=AUTH)
    assert r.status_code == 422


def test_models_list_and_bad_switch(client):
    r = client.get("/api/models", headers=AUTH).json()
    assert r["serving"] == 1 and r["versions"][0]["active"]
    assert client.post("/api/models/42/activate", headers=AUTH).status_code == 404
    assert client.post("/api/jobs/finetune", headers=AUTH,
                       json={"steps": 0}).status_code == 422


def test_serve_cli_errors_are_one_line(tmp_path, capsys):
    from fusionbrain.cli import main

    assert main(["serve", "--model", str(tmp_path / "none"), "--db", str(tmp_path / "p.db")]) == 2
    assert "not a model folder" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "short").write_text("abc")
    assert main(["serve", "--model", str(tmp_path / "m"), "--db", str(tmp_path / "p.db"),
                 "--api-key-file", str(tmp_path / "short")]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "m"), "--db", str(tmp_path / "p.db"),
                 "--port", "0"]) == 2


def test_default_api_key_file_is_made_once_and_private(tmp_path):
    from fusionbrain.serve.cli import api_key

    key, path = api_key(None, tmp_path / "pilot" / "p.sqlite")
    assert path == tmp_path / "pilot" / "p.sqlite.key" and len(key) >= 24
    assert (path.stat().st_mode & 0o777) == 0o600
    assert api_key(None, tmp_path / "pilot" / "p.sqlite") == (key, path)
