"""HTR on crops "in the style of real forms": Tesseract 5 and a FusionBrain model side by side.

    python bench/htr_real_style.py --n 200                       # Tesseract only
    python bench/htr_real_style.py --n 200 --model runs/x/fusion/last/model

Renders ``--n`` crops per language with ``synthetic.form_name_crops`` (names in CAPITALS,
never drawn in training, by held-out hands, on scanned-form crops: printed label, form lines,
coloured ink, JPEG...), reads each with Tesseract 5 (``tesseract IMG stdout --psm 7 -l eng``
or ``rus`` by the word's script, the Debian packages tesseract-ocr / tesseract-ocr-rus) and,
with ``--model``, with the model's HTR head. Prints and writes exact accuracy (after trimming
outer white space) and CER (total edit distance / total truth characters) for EN and RU
separately, and a PNG grid of example crops with both readings.

With ``--embedded`` it reads the first ``--n`` images of the embedded test split instead (the
HTR test of ``fusionbrain data build --seed SEED``: words, names, numbers and phrases never drawn
in training, by held-out hands; ``--n 200`` is the whole small build's test split).

With ``--real LABELS.json`` (``{"image.png": "transcription"}`` beside an ``images/`` folder or
the images themselves, as ``fusionbrain data import copybook`` reads it) the same comparison
runs on your own crops instead, e.g. real names cut from scanned forms.

Results: ``bench/results/htr_real_style.md`` (+ ``.json`` and ``htr_real_style.png``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"


def tesseract_read(path: str, lang: str, timeout: float = 60.0) -> str:
    """Tesseract 5's single-line reading (--psm 7) of one crop; "" when it reads nothing."""
    cmd = ["tesseract", path, "stdout", "--psm", "7", "-l", "rus" if lang == "ru" else "eng"]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # one thread per call; calls run in parallel
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f"tesseract failed on {path}: {res.stderr.strip()[:200]}")
    return res.stdout.strip()


def scores(preds: list[str], truths: list[str]) -> dict[str, float]:
    from fusionbrain.tasks.htr.metric import edit_distance

    exact = sum(p.strip() == t for p, t in zip(preds, truths, strict=True))
    dist = sum(edit_distance(p.strip(), t) for p, t in zip(preds, truths, strict=True))
    chars = sum(len(t) for t in truths)
    return {"n": len(truths), "exact": exact / max(1, len(truths)), "cer": dist / max(1, chars)}


def grid(rows: list[dict], path: Path, per_lang: int = 8) -> None:
    """Example crops with their truth and readings, EN then RU, as one PNG."""
    from PIL import Image, ImageDraw, ImageFont

    from fusionbrain.data.fonts import fallback_fonts

    font = ImageFont.truetype(next(f.path for f in fallback_fonts() if "Oblique" not in f.path
                                   and "Serif" not in f.path and "Mono" not in f.path), 13)
    picked = [r for lang in ("en", "ru") for r in [x for x in rows if x["lang"] == lang][:per_lang]]
    cell_h = 64 + 3 * 16 + 10
    sheet = Image.new("RGB", (2 * 540, ((len(picked) + 1) // 2) * cell_h), "white")
    d = ImageDraw.Draw(sheet)
    for i, r in enumerate(picked):
        x, y = (i % 2) * 540 + 6, (i // 2) * cell_h + 4
        with Image.open(r["image"]) as im:
            sheet.paste(im.convert("RGB"), (x, y))
        y += 66
        d.text((x, y), f"truth: {r['truth']}", font=font, fill=(0, 0, 0))
        ok = r["tesseract"] == r["truth"]
        d.text((x, y + 16), f"tesseract: {r['tesseract']}", font=font,
               fill=(0, 120, 0) if ok else (190, 0, 0))
        if "model" in r:
            ok = r["model"] == r["truth"]
            d.text((x, y + 32), f"model: {r['model']}", font=font,
                   fill=(0, 120, 0) if ok else (190, 0, 0))
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="crops per language (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", help="comma-separated seeds (e.g. 0,1,2): render and read a "
                    "new set per seed; the table gives mean ± sd over them")
    ap.add_argument("--model", help="a FusionBrain model folder to read the same crops")
    ap.add_argument("--out", default=str(OUT / "htr_real_style"),
                    help="result path prefix (.md/.json/.png are added)")
    ap.add_argument("--workers", type=int, default=2, help="parallel Tesseract calls")
    ap.add_argument("--embedded", action="store_true",
                    help="read the embedded test split (first --n images) instead")
    ap.add_argument("--real", help="labels JSON of real crops to read instead of synthetic ones")
    ap.add_argument("--real-images", help="the folder of --real's images (default: images/ "
                    "beside it, else its own folder)")
    args = ap.parse_args(argv)
    if shutil.which("tesseract") is None:
        print("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-rus)",
              file=sys.stderr)
        return 2

    from fusionbrain.tasks.htr.synthetic import form_name_crops

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    model = None
    if args.model:
        from fusionbrain.model import FusionBrain

        model = FusionBrain.from_pretrained(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="htr_real_style_"))
    rows: list[dict] = []
    t_render = t_tess = 0.0
    t_model: float | None = 0.0 if model is not None else None
    for seed in seeds:
        rows_s: list[dict] = []
        t0 = time.perf_counter()
        if args.real:
            from fusionbrain.tasks.htr.data import read_copybook

            for s in read_copybook(args.real, args.real_images):
                rows_s.append({"lang": s.lang, "truth": s.text, "image": s.image_path})
        elif args.embedded:
            from fusionbrain.tasks.htr.synthetic import generate

            for s in generate("test", args.n, seed, tmp / str(seed)):
                rows_s.append({"lang": s.lang, "truth": s.text, "image": s.image_path})
        else:
            (tmp / str(seed)).mkdir()
            for lang in ("en", "ru"):
                for i, (img, text) in enumerate(form_name_crops(args.n, lang, seed)):
                    p = tmp / str(seed) / f"{lang}_{i}.png"
                    img.save(p)
                    rows_s.append({"lang": lang, "truth": text, "image": str(p)})
        t_render += time.perf_counter() - t0

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            reads = list(pool.map(lambda r: tesseract_read(r["image"], r["lang"]), rows_s))
        for r, text in zip(rows_s, reads, strict=True):
            r["tesseract"] = text
            r["seed"] = seed
        t_tess += time.perf_counter() - t0

        if model is not None:
            t0 = time.perf_counter()
            readings = model.read_text([r["image"] for r in rows_s], batch_size=32)
            t_model += time.perf_counter() - t0
            for r, text in zip(rows_s, readings, strict=True):
                r["model"] = text
        if seed == seeds[0]:
            grid(rows_s, out.with_suffix(".png"))
        rows += rows_s

    result: dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": f"{platform.processor() or platform.machine()}, "
                               f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                    "command": "python bench/htr_real_style.py " + " ".join(argv or sys.argv[1:]),
                    "n_per_lang": args.n, "seed": seeds[0], "model": args.model,
                    "seconds": {"render": round(t_render, 1), "tesseract": round(t_tess, 1),
                                "model": None if t_model is None else round(t_model, 1)},
                    "scores": {}}
    readers = ["tesseract"] + (["model"] if args.model else [])
    result["seeds"] = seeds
    for reader in readers:
        for lang in ("en", "ru"):
            per_seed = [scores([r[reader] for r in rows if r["lang"] == lang and r["seed"] == sd],
                               [r["truth"] for r in rows if r["lang"] == lang and r["seed"] == sd])
                        for sd in seeds]
            per_seed = [x for x in per_seed if x["n"]]
            if not per_seed:
                continue
            agg = {"n": sum(x["n"] for x in per_seed)}
            for k in ("exact", "cer"):
                vals = [x[k] for x in per_seed]
                agg[k] = statistics.mean(vals)
                agg[k + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
                agg[k + "_per_seed"] = vals
            result["scores"][f"{reader}/{lang}"] = agg

    def cell(s: dict, k: str) -> str:
        return f"{s[k]:.3f}" + (f" ± {s[k + '_sd']:.3f}" if len(seeds) > 1 else "")

    lines = ["| reader | lang | crops | exact | CER |", "|---|---|---:|---:|---:|"]
    for key, s in result["scores"].items():
        reader, lang = key.split("/")
        lines.append(f"| {reader} | {lang} | {s['n']} | {cell(s, 'exact')} | {cell(s, 'cer')} |")
    if args.model:
        lines += ["", "| lang | model exact / Tesseract exact (per seed) |", "|---|---|"]
        for lang in ("en", "ru"):
            m, t = result["scores"].get(f"model/{lang}"), result["scores"].get(f"tesseract/{lang}")
            if m and t:
                ratios = [a / b if b else float("inf") if a else float("nan") for a, b in
                          zip(m["exact_per_seed"], t["exact_per_seed"], strict=True)]
                result["scores"][f"model/{lang}"]["x_tesseract_per_seed"] = ratios
                lines.append(f"| {lang} | " + ", ".join(f"{x:.2f}×" for x in ratios) + " |")
    table = "\n".join(lines)
    print(table)
    result["examples"] = [{k: v for k, v in r.items() if k != "image"} for r in rows[:20]] + [
        {k: v for k, v in r.items() if k != "image"} for r in rows if r["lang"] == "ru"][:20]
    out.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n",
                                        "utf-8")
    what = "your crops" if args.real else "the embedded test" if args.embedded else "form-style crops"
    md = (f"# HTR on {what}: {' vs '.join(readers)}\n\n"
          f"`{result['command']}` — {result['date']}, {result['machine']}; "
          + (f"mean ± sd over seeds {', '.join(map(str, seeds))}; " if len(seeds) > 1 else "")
          + (f"real crops from `{args.real}`; " if args.real else
             f"the first {args.n} images of the embedded HTR test split (seeds "
             f"{', '.join(map(str, seeds))}); "
             if args.embedded else
             f"{args.n} crops per language (names in CAPITALS, held-out hands, test-side "
             "names); ")
          + f"render {t_render:.0f} s, Tesseract {t_tess:.0f} s"
          + (f", model {t_model:.0f} s" if t_model is not None else "") + ".\n\n"
          + table + f"\n\nExamples: `{out.with_suffix('.png').name}`.\n")
    out.with_suffix(".md").write_text(md, "utf-8")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {out.with_suffix('.md')}, .json, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
