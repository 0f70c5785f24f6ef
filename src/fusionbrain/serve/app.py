"""The pilot service (FastAPI): inference for the four tasks, the review page and its API.

Endpoints (all but ``/healthz`` and ``/readyz`` need ``Authorization: Bearer KEY`` or the
cookie that ``POST /api/login`` sets for the review page):

- ``POST /v1/htr`` (images) · ``/v1/vqa`` (images + questions.json value) · ``/v1/zsod``
  (images + requests.json value) · ``/v1/c2c`` (requests.json value): answers in the
  challenge's value shapes under ``predictions``; HTR adds a calibrated ``confidence``.
- ``GET /healthz`` (process up), ``/readyz`` (model loaded), ``/metrics`` (Prometheus),
  ``/docs`` (OpenAPI).
- ``GET /review`` (the page) and ``/api/...`` (uploads, items, review, undo, export,
  fine-tuning jobs, model versions: switch and roll back).

Limits answer clearly: body size 413, pixel count 413, undecodable image or JSON 422,
pending work over the bound 503 + ``Retry-After``, a request over its time 504.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import logging
import os
import queue
import tempfile
import threading
import time
import zipfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from fusionbrain.serve.batching import Batcher, Overloaded
from fusionbrain.serve.inference import ImageProblem, decode_image, load_temperature, png_bytes
from fusionbrain.serve.store import Conflict, NotFound, Store

log = logging.getLogger("fusionbrain.serve")
COOKIE = "fusionbrain_key"
TASK_PATHS = {"HTR": "/v1/htr", "VQA": "/v1/vqa", "zsOD": "/v1/zsod", "C2C": "/v1/c2c"}


@dataclass
class Settings:
    model_dir: Path
    db: Path
    api_key: str
    max_body_bytes: int = 32 << 20
    max_pixels: int = 50_000_000  # an A4 page at 600 dpi is 35 M
    max_items: int = 64  # images (or sources) per inference request
    max_pending: int = 256  # items waiting or running, all tasks together
    max_batch: int = 16
    max_wait_ms: float = 5.0
    request_timeout_s: float = 60.0
    watch_interval_s: float = 2.0
    models_dir: Path | None = None  # fine-tuned versions (default: <db>.models/)

    def __post_init__(self) -> None:
        self.model_dir = Path(self.model_dir)
        self.db = Path(self.db)
        if self.models_dir is None:
            self.models_dir = self.db.with_name(self.db.name + ".models")


@dataclass
class ModelState:
    model: Any = None
    version: int | None = None
    path: str | None = None
    temperature: float = 1.0
    error: str | None = None
    loading: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, message: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared or streamed)."""

    class _TooLarge(Exception):
        pass

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        msg = f"request body over the limit of {self.max_bytes} bytes"
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await _error(413, msg)(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except self._TooLarge:
            if not started:
                await _error(413, msg)(scope, receive, send)


# -- request bodies ------------------------------------------------------------------------
class LoginBody(BaseModel):
    key: str


class ReviewBody(BaseModel):
    text: str = Field(max_length=1000)
    reviewer: str = Field(min_length=1, max_length=80)
    base_version: int


class UndoBody(BaseModel):
    reviewer: str = Field(min_length=1, max_length=80)
    base_version: int


class FinetuneBody(BaseModel):
    steps: int = Field(default=60, ge=1, le=5000)
    activate: str = Field(default="if-better", pattern="^(if-better|always|never)$")
    reviewer: str = ""
    htr_test_n: int = Field(default=100, ge=0, le=2000)  # embedded test words in the report


def _static(name: str) -> str:
    return resources.files("fusionbrain.serve").joinpath("static", name).read_text("utf-8")


def create_app(settings: Settings, model: Any = None) -> FastAPI:
    """The app; ``model`` (already loaded from ``settings.model_dir``) skips the first load."""
    registry = CollectorRegistry()
    m_requests = Counter("fusionbrain_requests_total", "HTTP requests", ["path", "status"],
                         registry=registry)
    m_latency = Histogram("fusionbrain_request_seconds", "inference request latency per task",
                          ["task"], registry=registry,
                          buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
    m_batch = Histogram("fusionbrain_batch_size", "items per model forward pass", ["task"],
                        registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64))
    m_queue = Gauge("fusionbrain_queue_items", "inference items waiting or running",
                    registry=registry)
    m_version = Gauge("fusionbrain_model_version", "id of the model version being served",
                      registry=registry)
    m_ready = Gauge("fusionbrain_model_ready", "1 when a model is loaded", registry=registry)

    state = ModelState()
    jobs_q: queue.Queue[int | None] = queue.Queue()

    def run_batch(task: str, items: list) -> list:
        from fusionbrain.serve.inference import read_htr

        mdl, temp = state.model, state.temperature  # one consistent version per batch
        if task == "HTR":
            return read_htr(mdl, items, temp)
        return mdl.predict(task, items, batch_size=len(items))

    def load_version(version_id: int) -> None:
        """Load a registered model version and swap it in (on the caller's thread)."""
        from fusionbrain.model import FusionBrain

        info = app.state.store.model_version(version_id)
        with state.lock:
            if state.version == version_id:  # loaded meanwhile (the watcher and a switch)
                return
            state.loading = True
            try:
                if model is not None and state.model is None and \
                        Path(info["path"]) == settings.model_dir.resolve():
                    mdl = model
                else:
                    mdl = FusionBrain.from_pretrained(info["path"])
                    mdl.eval()
                if "HTR" not in mdl.task_names:
                    raise RuntimeError(f"model {info['path']} has no HTR head")
                state.model, state.version, state.path = mdl, version_id, info["path"]
                state.temperature = load_temperature(info["path"])
                state.error = None
                m_version.set(version_id)
                m_ready.set(1)
                log.info("serving model version %s (%s)", version_id, info["path"])
            except Exception as e:  # keep serving the previous version
                state.error = f"model version {version_id}: {str(e).splitlines()[0]}"
                log.error(state.error)
            finally:
                state.loading = False

    def job_worker() -> None:
        from fusionbrain.serve.finetune import finetune_job

        store: Store = app.state.store
        while True:
            job_id = jobs_q.get()
            if job_id is None:
                return
            job = next(j for j in store.jobs() if j["id"] == job_id)
            store.update_job(job_id, "running")
            try:
                result = finetune_job(store, job["params"], settings.models_dir)
                store.update_job(job_id, "done", result=result)
            except Exception as e:
                log.exception("job %s failed", job_id)
                store.update_job(job_id, "failed", error=str(e).splitlines()[0] if str(e) else
                                 type(e).__name__)

    async def watch_active() -> None:
        """Follow the database's active model version (set by the page, the API or
        ``fusionbrain train --from-corrections``)."""
        store: Store = app.state.store
        failed: int | None = None  # a version that failed to load is not retried in a loop
        while True:
            want = store.active_model_version()
            if want is not None and want not in (state.version, failed) and not state.loading:
                await asyncio.to_thread(load_version, want)
                if state.version != want:  # failed: fall back to what we serve
                    failed = want
                    if state.version is not None:
                        store.set_active_model_version(state.version)
            await asyncio.sleep(settings.watch_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = Store(settings.db)
        store.fail_interrupted_jobs()
        app.state.store = store
        base = store.add_model_version(settings.model_dir, note="base (--model)")
        if store.active_model_version() is None:
            store.set_active_model_version(base)
        app.state.batcher = Batcher(run_batch, max_batch=settings.max_batch,
                                    max_wait_ms=settings.max_wait_ms,
                                    max_pending=settings.max_pending,
                                    on_batch=lambda t, n: m_batch.labels(t).observe(n))
        watcher = asyncio.get_running_loop().create_task(watch_active())
        worker = threading.Thread(target=job_worker, name="jobs", daemon=True)
        worker.start()
        try:
            yield
        finally:
            watcher.cancel()
            jobs_q.put(None)
            await app.state.batcher.close()
            store.close()

    app = FastAPI(title="FusionBrain pilot", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None,
                  description="HTR, VQA, zsOD and C2C inference; review of HTR readings.")
    app.state.settings = settings
    app.state.model_state = state
    app.state.jobs_queue = jobs_q
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    # -- errors: one clear line, the right code ------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            msg = f"malformed JSON body ({first.get('ctx', {}).get('error', 'invalid')})"
            where = ""
        return _error(422, f"{where}: {msg}" if where else msg)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(ImageProblem)
    async def _image(request: Request, exc: ImageProblem) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(Overloaded)
    async def _busy(request: Request, exc: Overloaded) -> JSONResponse:
        return _error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc), item=exc.item)

    @app.exception_handler(NotFound)
    async def _missing(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        return _error(422, str(exc).splitlines()[0])

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            log.exception("unhandled error on %s", request.url.path)
            response = _error(500, "internal error (see the server log)")
        route = request.scope.get("route")
        path = getattr(route, "path", "other")
        m_requests.labels(path, str(response.status_code)).inc()
        for task, p in TASK_PATHS.items():
            if path == p:
                m_latency.labels(task).observe(time.perf_counter() - start)
        return response

    # -- auth --------------------------------------------------------------------------------
    def require_key(request: Request) -> None:
        given = ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif COOKIE in request.cookies:
            given = request.cookies[COOKIE]
        if not given or not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)",
                                headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_key)]

    # -- probes, metrics, docs ------------------------------------------------------------
    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        if state.model is None:
            return _error(503, state.error or "model loading",
                          headers={"Retry-After": "2"})
        return JSONResponse({"status": "ready", "model_version": state.version})

    @app.get("/metrics", tags=["ops"], dependencies=auth)
    def metrics() -> Response:
        m_queue.set(app.state.batcher.pending)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    def docs() -> HTMLResponse:
        # Swagger UI served from the swagger-ui-bundle-v2 package, not a CDN: works offline
        return get_swagger_ui_html(openapi_url="/openapi.json", title="FusionBrain pilot",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")

    @app.get("/docs/assets/{name}", include_in_schema=False, dependencies=auth)
    def docs_asset(name: str) -> FileResponse:
        from swagger_ui_bundle import swagger_ui_path

        types = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                 "favicon-32x32.png": "image/png"}
        if name not in types:
            raise HTTPException(404, f"no asset {name!r}")
        return FileResponse(str(Path(str(swagger_ui_path)) / name), media_type=types[name])

    # -- inference ------------------------------------------------------------------------
    def _ready() -> None:
        if state.model is None:
            raise HTTPException(503, state.error or "model loading", headers={"Retry-After": "2"})

    async def _submit(task: str, items: list) -> list:
        _ready()
        if task not in state.model.task_names:
            raise HTTPException(404, f"the served model has no {task} head")
        try:
            return await asyncio.wait_for(app.state.batcher.submit(task, items),
                                          settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"request took over {settings.request_timeout_s:g} s"
                                ) from None

    async def _images(files: list[UploadFile], mode: str) -> list[tuple[str, Any, bytes]]:
        if len(files) > settings.max_items:
            raise HTTPException(413, f"{len(files)} images in one request (limit "
                                     f"{settings.max_items})")
        out, seen = [], set()
        for i, f in enumerate(files):
            name = f.filename or f"{i}.png"
            if name in seen:
                raise HTTPException(422, f"{name}: file name given twice")
            seen.add(name)
            data = await f.read()
            out.append((name, decode_image(data, name, settings.max_pixels, mode), data))
        return out

    def _json_field(raw: str, field_name: str, expect: type) -> Any:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise HTTPException(422, f"{field_name}: malformed JSON at line {e.lineno} column "
                                     f"{e.colno}: {e.msg}") from None
        if not isinstance(value, expect):
            raise HTTPException(422, f"{field_name}: expected a JSON "
                                     f"{'object' if expect is dict else 'array'}")
        return value

    @app.post("/v1/htr", tags=["inference"], dependencies=auth)
    async def htr(files: Annotated[list[UploadFile], File(description="word or line images")]
                  ) -> dict:
        """Read word/line images: ``predictions`` {file name: text} and ``confidence``."""
        _ready()
        images = await _images(files, "L")
        readings = await _submit("HTR", [im for _, im, _ in images])
        return {"model_version": state.version,
                "predictions": {n: r.text for (n, _, _), r in zip(images, readings, strict=True)},
                "confidence": {n: round(r.confidence, 4)
                               for (n, _, _), r in zip(images, readings, strict=True)},
                "char_confidence": {n: r.char_conf
                                    for (n, _, _), r in zip(images, readings, strict=True)}}

    @app.post("/v1/vqa", tags=["inference"], dependencies=auth)
    async def vqa(files: Annotated[list[UploadFile], File()],
                  questions: Annotated[str, Form(description='{"0": {"file_name": "0.jpg", '
                                                              '"question": "..."}}')]) -> dict:
        """Answer questions (questions.json's value) about the uploaded images."""
        from fusionbrain.tasks.vqa.data import VQASample

        _ready()
        q = _json_field(questions, "questions", dict)
        if len(q) > settings.max_items:
            raise HTTPException(413, f"{len(q)} questions (limit {settings.max_items})")
        images = {n: im for n, im, _ in await _images(files, "RGB")}
        samples = []
        for k, v in q.items():
            if not isinstance(v, dict) or not isinstance(v.get("question"), str) or \
                    not isinstance(v.get("file_name"), str):
                raise HTTPException(422, f"questions: key {k!r}: expected "
                                         '{"file_name": str, "question": str}')
            if v["file_name"] not in images:
                raise HTTPException(422, f"questions: key {k!r}: image {v['file_name']!r} "
                                         "not uploaded")
            samples.append(VQASample(str(k), images[v["file_name"]], v["question"]))
        out = await _submit("VQA", samples)
        return {"model_version": state.version,
                "predictions": {s.id: a for s, a in zip(samples, out, strict=True)}}

    @app.post("/v1/zsod", tags=["inference"], dependencies=auth)
    async def zsod(files: Annotated[list[UploadFile], File()],
                   requests: Annotated[str, Form(description='{"0.jpg": ["phrase", ...]}')]
                   ) -> dict:
        """Find the phrases (requests.json's value) in the uploaded images."""
        from fusionbrain.tasks.zsod.data import ZsODSample

        _ready()
        r = _json_field(requests, "requests", dict)
        images = {n: im for n, im, _ in await _images(files, "RGB")}
        samples = []
        for k, phrases in r.items():
            if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                raise HTTPException(422, f"requests: key {k!r}: expected a list of phrases")
            if k not in images:
                raise HTTPException(422, f"requests: image {k!r} not uploaded")
            samples.append(ZsODSample(k, images[k], {p: [] for p in phrases}))
        out = await _submit("zsOD", samples)
        return {"model_version": state.version,
                "predictions": {s.id: o for s, o in zip(samples, out, strict=True)}}

    @app.post("/v1/c2c", tags=["inference"], dependencies=auth)
    async def c2c(body: dict[str, str]) -> dict:
        """Translate Java sources (requests.json's value) to TransCoder-style Python."""
        from fusionbrain.tasks.c2c.data import C2CSample

        _ready()
        if len(body) > settings.max_items:
            raise HTTPException(413, f"{len(body)} sources (limit {settings.max_items})")
        samples = [C2CSample(str(k), v, "") for k, v in body.items()]
        out = await _submit("C2C", samples)
        return {"model_version": state.version,
                "predictions": {s.id: o for s, o in zip(samples, out, strict=True)}}

    # -- the review page and its API -----------------------------------------------------
    @app.get("/review", include_in_schema=False)
    def review_page() -> HTMLResponse:
        # the page itself holds no data; everything it shows comes from /api/ (key needed)
        return HTMLResponse(_static("review.html"))

    @app.get("/review/{name}", include_in_schema=False)
    def review_asset(name: str) -> Response:
        types = {"review.js": "text/javascript", "review.css": "text/css"}
        if name not in types:
            raise HTTPException(404, f"no asset {name!r}")
        return Response(_static(name), media_type=types[name])

    @app.post("/api/login", tags=["review"])
    def login(body: LoginBody) -> JSONResponse:
        """Check the key and keep it in an HttpOnly cookie for the page (and /docs)."""
        if not hmac.compare_digest(body.key.encode(), settings.api_key.encode()):
            raise HTTPException(401, "wrong API key")
        resp = JSONResponse({"ok": True})
        resp.set_cookie(COOKIE, body.key, httponly=True, samesite="strict")
        return resp

    @app.post("/api/uploads", tags=["review"], dependencies=auth)
    async def upload(files: Annotated[list[UploadFile], File()],
                     mode: Annotated[str, Form(pattern="^(words|page)$")] = "words") -> dict:
        """Images to review: word/line images (``words``) or scanned pages split into lines."""
        from fusionbrain.serve.segmentation import crop_lines

        _ready()
        store: Store = app.state.store
        images = await _images(files, "L")
        crops: list[tuple[str, Any, str | None]] = []
        for name, im, _ in images:
            if mode == "page":
                lines = crop_lines(im)
                if not lines:
                    raise HTTPException(422, f"{name}: no text lines found on the page")
                for k, (box, crop) in enumerate(lines):
                    crops.append((f"{name}#line{k + 1}", crop, json.dumps({"page": name,
                                                                           "box": box})))
            else:
                crops.append((name, im, None))
        if len(crops) > settings.max_pending:
            raise HTTPException(413, f"{len(crops)} lines in one upload (limit "
                                     f"{settings.max_pending})")
        readings = await _submit("HTR", [c for _, c, _ in crops])
        batch = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{os.urandom(2).hex()}"
        version = state.version
        ids = []
        for (name, crop, source), r in zip(crops, readings, strict=True):
            sha = await asyncio.to_thread(store.put_image, png_bytes(crop))
            ids.append(store.add_item(sha, name, batch, r.text, r.confidence, r.char_conf,
                                      version, source))
        return {"batch": batch, "items": [store.item(i) for i in ids]}

    @app.get("/api/items", tags=["review"], dependencies=auth)
    def items(order: str = "created", status: str | None = None, batch: str | None = None,
              limit: int = 500) -> dict:
        """Item heads; ``order=confidence``: new items, lowest confidence first."""
        if order not in ("created", "confidence"):
            raise HTTPException(422, "order: expected 'created' or 'confidence'")
        store: Store = app.state.store
        return {"items": store.list_items(order, status, batch, min(max(limit, 1), 5000)),
                "counts": store.counts()}

    @app.get("/api/items/{item_id}", tags=["review"], dependencies=auth)
    def item(item_id: int) -> dict:
        return app.state.store.item(item_id)

    @app.post("/api/items/{item_id}/review", tags=["review"], dependencies=auth)
    def review(item_id: int, body: ReviewBody) -> dict:
        """Confirm or correct; 409 when someone saved since ``base_version``."""
        return app.state.store.review(item_id, body.text, body.reviewer, body.base_version)

    @app.post("/api/items/{item_id}/undo", tags=["review"], dependencies=auth)
    def undo(item_id: int, body: UndoBody) -> dict:
        return app.state.store.undo(item_id, body.reviewer, body.base_version)

    @app.get("/api/images/{sha}", tags=["review"], dependencies=auth)
    def image(sha: str) -> FileResponse:
        path = app.state.store.image_path(sha)
        if not path.is_file():
            raise NotFound(f"no image {sha}")
        return FileResponse(path, media_type="image/png",
                            headers={"Cache-Control": "private, max-age=31536000, immutable"})

    @app.get("/api/export.csv", tags=["review"], dependencies=auth)
    def export_csv() -> Response:
        return Response(app.state.store.export_csv(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="corrections.csv"'})

    @app.get("/api/export.zip", tags=["review"], dependencies=auth)
    def export_zip() -> Response:
        """Reviewed pairs as a challenge folder: ``input/HTR/images/`` + ``true_HTR.json``."""
        with tempfile.TemporaryDirectory() as tmp:
            app.state.store.export_challenge(tmp)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for p in sorted(Path(tmp).rglob("*")):
                    if p.is_file():
                        z.write(p, p.relative_to(tmp).as_posix())
        return Response(buf.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="corrections.zip"'})

    @app.get("/api/reviewers", tags=["review"], dependencies=auth)
    def reviewers() -> dict:
        return {"reviewers": app.state.store.reviewers()}

    # -- learning from corrections: jobs and model versions -------------------------------
    @app.post("/api/jobs/finetune", tags=["models"], dependencies=auth, status_code=202)
    def start_finetune(body: FinetuneBody) -> dict:
        """Queue one background fine-tuning of the HTR head on the reviewed items."""
        store: Store = app.state.store
        busy = [j for j in store.jobs() if j["status"] in ("queued", "running")]
        if busy:
            raise HTTPException(409, f"job {busy[0]['id']} is already {busy[0]['status']}")
        base = state.version
        if base is None:
            raise HTTPException(503, "model loading", headers={"Retry-After": "2"})
        params = {"base_version": base, "steps": body.steps, "activate": body.activate,
                  "requested_by": body.reviewer, "htr_test_n": body.htr_test_n}
        job_id = store.add_job("finetune", params)
        jobs_q.put(job_id)
        return {"job": job_id, "status": "queued"}

    @app.get("/api/jobs", tags=["models"], dependencies=auth)
    def jobs() -> dict:
        return {"jobs": app.state.store.jobs()}

    @app.get("/api/models", tags=["models"], dependencies=auth)
    def models() -> dict:
        return {"serving": state.version, "error": state.error,
                "temperature": state.temperature, "versions": app.state.store.model_versions()}

    @app.post("/api/models/{version_id}/activate", tags=["models"], dependencies=auth)
    async def activate(version_id: int) -> dict:
        """Switch to (or roll back to) a model version; answers once it is served."""
        store: Store = app.state.store
        store.set_active_model_version(version_id)
        if state.version != version_id:
            await asyncio.to_thread(load_version, version_id)
        if state.version != version_id:
            if state.version is not None:
                store.set_active_model_version(state.version)
            raise HTTPException(422, state.error or f"could not load version {version_id}")
        return {"serving": state.version}

    @app.get("/", include_in_schema=False)
    def root() -> PlainTextResponse:
        return PlainTextResponse("FusionBrain pilot: /review (page), /docs (API), /healthz\n")

    return app
