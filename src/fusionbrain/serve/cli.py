"""``fusionbrain serve``: the pilot service (inference API + review page), one process."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from fusionbrain.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path,
                        help="model folder (save_pretrained) or a shipped model's name "
                             "(default: $FUSIONBRAIN_MODEL, else models/fusionbrain-cpu-long)")
    parser.add_argument("--db", type=Path, required=True,
                        help="pilot database (SQLite, made if absent; images beside it)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--api-key-file", type=Path,
                        help="file holding the API key (default: DB.key, made with a random "
                             "key if absent)")
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="request body limit")
    parser.add_argument("--max-pixels", type=int, default=50_000_000, help="per image")
    parser.add_argument("--max-pending", type=int, default=256,
                        help="inference items waiting or running before 503 (default 256)")
    parser.add_argument("--max-batch", type=int, default=16, help="items per forward pass")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0,
                        help="how long a batch waits for more items (default 5 ms)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--threads", type=int, help="torch CPU threads")


def api_key(path: Path | None, db: Path) -> tuple[str, Path]:
    """The key from ``path``, or from ``DB.key`` (made with a random key, mode 0600)."""
    if path is not None:
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UserError(f"cannot read API key file: {e.strerror}", path=path) from None
        if len(key) < 8:
            raise UserError("API key file must hold a key of at least 8 characters", path=path)
        return key, path
    path = db.with_name(db.name + ".key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return api_key(path, db)


def run(args: argparse.Namespace) -> int:
    for name in ("max_pixels", "max_pending", "max_batch", "port"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_body_mb <= 0 or args.timeout <= 0 or args.batch_wait_ms < 0:
        raise UserError("--max-body-mb and --timeout must be > 0, --batch-wait-ms >= 0")
    from fusionbrain.model.pretrained import resolve_model

    args.model = resolve_model(args.model)  # no --model: the default model, or why not
    if not (args.model / "config.json").is_file():
        raise UserError("not a model folder (no config.json)", path=args.model)
    key, key_path = api_key(args.api_key_file, args.db)

    import uvicorn

    from fusionbrain.serve.app import Settings, create_app

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    settings = Settings(model_dir=args.model, db=args.db, api_key=key,
                        max_body_bytes=int(args.max_body_mb * (1 << 20)),
                        max_pixels=args.max_pixels, max_pending=args.max_pending,
                        max_batch=args.max_batch, max_wait_ms=args.batch_wait_ms,
                        request_timeout_s=args.timeout)
    app = create_app(settings)
    print(f"fusionbrain serve: http://{args.host}:{args.port}/review  (API key in {key_path})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
