"""Load test of ``fusionbrain serve`` on loopback: C concurrent clients for D seconds against
``POST /v1/htr`` (one word image each), with micro-batching on and off.

    python bench/serve_load.py --model DIR [--clients 100] [--seconds 60] [--threads 2]
        [--phases batched,unbatched] [--out results.json]

Bounded and local: the server is started here on 127.0.0.1 (a free port) with a temporary
database, every phase stops after --seconds, and the server is stopped at the end. A client
that gets 503 waits the ``Retry-After`` it was given (capped at 2 s) and tries again, as a
well-behaved client would. Reports per phase: answers by status code, p50/p95/max latency of
the 200s, throughput (answered images per second) and the mean batch size from /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-key-123456"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def word_images(n: int) -> list[bytes]:
    from fusionbrain.serve.inference import png_bytes
    from fusionbrain.tasks.htr import synthetic

    words = synthetic.vocabulary("en")[:n]
    return [png_bytes(synthetic.render_word(w, seed=i)) for i, w in enumerate(words)]


async def phase(url: str, images: list[bytes], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    codes: dict[int, int] = {}
    errors: dict[str, int] = {}
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(k: int, http: httpx.AsyncClient) -> None:
        i = k
        while time.perf_counter() < stop:
            img = images[i % len(images)]
            i += clients
            t = time.perf_counter()
            try:
                r = await http.post(url + "/v1/htr", files=[("files", ("w.png", img, "image/png"))])
            except httpx.HTTPError as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                continue
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t)
            elif r.status_code in (429, 503):
                await asyncio.sleep(min(2.0, float(r.headers.get("Retry-After", "1"))))

    t0 = time.perf_counter()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=120,
                                 limits=limits) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
        metrics = (await http.get(url + "/metrics")).text
    wall = time.perf_counter() - t0
    batch_sum = batch_n = 0.0
    for line in metrics.splitlines():
        if line.startswith('fusionbrain_batch_size_sum{task="HTR"}'):
            batch_sum = float(line.split()[-1])
        if line.startswith('fusionbrain_batch_size_count{task="HTR"}'):
            batch_n = float(line.split()[-1])
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=20) if len(lat) >= 20 else None
    return {
        "clients": clients, "seconds": round(wall, 1), "codes": dict(sorted(codes.items())),
        "client_errors": errors, "ok": len(lat),
        "throughput_per_s": round(len(lat) / wall, 2),
        "p50_s": round(statistics.median(lat), 3) if lat else None,
        "p95_s": round(q[18], 3) if q else None, "max_s": round(lat[-1], 3) if lat else None,
        "forward_passes": int(batch_n), "mean_batch": round(batch_sum / batch_n, 2) if batch_n else None,
        "server_5xx_other_than_503": sum(v for c, v in codes.items() if c >= 500 and c != 503),
    }


def serve(model: Path, db: Path, port: int, threads: int, max_batch: int, log: Path
          ) -> subprocess.Popen:
    key = db.with_name("key")
    key.write_text(KEY)
    cmd = [sys.executable, "-m", "fusionbrain.cli", "serve", "--model", str(model), "--db",
           str(db), "--port", str(port), "--api-key-file", str(key), "--threads", str(threads),
           "--max-batch", str(max_batch)]
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--phases", default="batched,unbatched")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    images = word_images(200)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                          f"load average before {os.getloadavg()[0]:.1f}",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "model": str(args.model), "threads": args.threads, "phases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.phases.split(","):
            max_batch = {"batched": 16, "unbatched": 1}[name]
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = serve(args.model, Path(tmp) / f"{name}.sqlite", port, args.threads, max_batch,
                         Path(tmp) / f"{name}.log")
            try:
                wait_ready(url, proc)
                print(f"{name}: {args.clients} clients for {args.seconds:g} s ...", flush=True)
                r = asyncio.run(phase(url, images, args.clients, args.seconds))
                r["max_batch"] = max_batch
                r["load_average_after"] = round(os.getloadavg()[0], 1)
                results["phases"][name] = r
                print(json.dumps(r), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    ph = results["phases"]
    if "batched" in ph and "unbatched" in ph and ph["unbatched"]["throughput_per_s"]:
        results["batching_gain"] = round(ph["batched"]["throughput_per_s"]
                                         / ph["unbatched"]["throughput_per_s"], 2)
        print(f"batching gain (throughput batched / unbatched): {results['batching_gain']}x")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
