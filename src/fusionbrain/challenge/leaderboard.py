"""The leaderboard: each team's best submission, as a text table, an HTML page or JSON.

Ranking: on the public part, a team's best scored submission by S (the earliest on a tie).
With ``--private`` (the final ranking) the same submission of each team — its best on the
public board, so the private items cannot be used for picking — is ranked by its private S.
The multitask bar is the challenge's M/N >= 0.3, shown where the submission's
``metadata.json`` reports ``"parameters": {"total": N, "shared": M}``.
"""

from __future__ import annotations

import html
from typing import Any

from fusionbrain.scoring import PASS_MARK
from fusionbrain.tasks import TASKS

MULTITASK_BAR = 0.3


def multitask(meta: dict[str, Any]) -> dict[str, Any] | None:
    p = meta.get("parameters") if isinstance(meta, dict) else None
    if not isinstance(p, dict):
        return None
    try:
        n, m = int(p["total"]), int(p["shared"])
    except (KeyError, TypeError, ValueError):
        return None
    if n <= 0:
        return None
    return {"N": n, "M": m, "ratio": m / n, "passed": m / n >= MULTITASK_BAR}


def _part_s(row: dict[str, Any], part: str) -> float | None:
    sc = row.get("scores", {}).get(part)
    return None if sc is None else float(sc["S"])


def rows(subs: list[dict[str, Any]], *, private: bool = False) -> list[dict[str, Any]]:
    """Ranked rows, one per team: rank, team, id, method, per-task scores, S, multitask."""
    part = "private" if private else "public"
    best: dict[str, dict[str, Any]] = {}
    for s in subs:
        if s["status"] != "scored" or _part_s(s, "public") is None:
            continue
        cur = best.get(s["team"])
        if cur is None or _part_s(s, "public") > _part_s(cur, "public"):
            best[s["team"]] = s
    out = []
    for s in best.values():
        sc = s["scores"].get(part)
        if sc is None:
            continue
        out.append({"team": s["team"], "id": s["id"], "method": s["method"],
                    "baseline": s["is_baseline"], "submitted_at": s["submitted_at"],
                    "tasks": {t: sc["tasks"][t]["score"] if t in sc["tasks"] else None
                              for t in TASKS},
                    "S": float(sc["S"]), "passed": float(sc["S"]) >= PASS_MARK,
                    "multitask": multitask(s["metadata"])})
    out.sort(key=lambda r: (-r["S"], r["submitted_at"], r["id"]))
    for i, r in enumerate(out, 1):
        r["rank"] = i
    return out


def _cell(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _mt(m: dict[str, Any] | None) -> str:
    if m is None:
        return "not reported"
    return f"{m['ratio']:.2f} {'yes' if m['passed'] else 'NO'}"


def _plain(s: str, width: int) -> str:
    s = "".join(c if c.isprintable() else "?" for c in s)
    return s if len(s) <= width else s[:width - 1] + "…"


def text_table(ranked: list[dict[str, Any]], *, private: bool = False) -> str:
    head = f"{'#':>3}  {'team':<20} {'sub':>5}  " + "  ".join(f"{t:>6}" for t in TASKS) \
        + f"  {'S':>6}  {'M/N>=0.3':<12} method"
    lines = [f"leaderboard ({'private: final ranking' if private else 'public'} part, "
             "best submission per team)", head]
    for r in ranked:
        team = _plain(r["team"], 20) + (" *" if r["baseline"] else "")
        lines.append(f"{r['rank']:>3}  {team:<20} {'#' + str(r['id']):>5}  "
                     + "  ".join(f"{_cell(r['tasks'][t]):>6}" for t in TASKS)
                     + f"  {r['S']:>6.3f}  {_mt(r['multitask']):<12} {_plain(r['method'], 50)}")
    if not ranked:
        lines.append("  (no scored submissions yet)")
    lines.append(f"* organiser's baseline. S = sum of the four task scores rounded to 3 "
                 f"decimals; the challenge's bar is S >= {PASS_MARK}.")
    return "\n".join(lines)


def html_page(ranked: list[dict[str, Any]], subs: list[dict[str, Any]], *,
              private: bool = False, title: str = "FusionBrain challenge") -> str:
    """A self-contained page: the ranking, then every submission with its status."""
    e = html.escape
    part = "private part (final ranking)" if private else "public part"
    head = "".join(f"<th>{e(t)}</th>" for t in TASKS)
    body = []
    for r in ranked:
        cls = ' class="baseline"' if r["baseline"] else ""
        body.append(
            f"<tr{cls}><td>{r['rank']}</td><td>{e(r['team'])}</td><td>#{r['id']}</td>"
            + "".join(f"<td class=num>{_cell(r['tasks'][t])}</td>" for t in TASKS)
            + f"<td class=num><b>{r['S']:.3f}</b></td><td>{e(_mt(r['multitask']))}</td>"
            f"<td>{e(r['method'])}</td></tr>")
    subs_rows = []
    for s in sorted(subs, key=lambda s: -s["id"]):
        pub = s.get("scores", {}).get("public")
        s_cell = "" if pub is None else f"{pub['S']:.3f}"
        subs_rows.append(
            f"<tr><td>#{s['id']}</td><td>{e(s['team'])}</td><td>{e(s['submitted_at'])}</td>"
            f"<td>{e(s['status'])}</td><td class=num>{s_cell}</td>"
            f"<td>{e(s['reason'])}</td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{e(title)} leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.baseline {{ color: #777; font-style: italic; }}
</style></head><body>
<h1>{e(title)}: leaderboard</h1>
<p>{e(part)}; each team's best submission. S = C2C + HTR + zsOD + VQA (each rounded to 3
decimals); the challenge's bar is S &ge; {PASS_MARK}. Multitask: shared / total parameters
M/N &ge; {MULTITASK_BAR}, where the submission reports them. Italic rows: baselines.</p>
<table><tr><th>#</th><th>team</th><th>submission</th>{head}<th>S</th><th>M/N</th>
<th>method</th></tr>
{chr(10).join(body)}
</table>
<h2>All submissions</h2>
<table><tr><th>id</th><th>team</th><th>submitted (UTC)</th><th>status</th><th>S (public)</th>
<th>reason / notes</th></tr>
{chr(10).join(subs_rows)}
</table></body></html>
"""


def json_list(subs: list[dict[str, Any]], *, private: bool = False) -> dict[str, Any]:
    """Every submission: team, status, failure reason, per-task scores and S per part."""
    parts = ("public", "private", "all") if private else ("public",)
    out = []
    for s in subs:
        item = {"id": s["id"], "team": s["team"], "method": s["method"],
                "baseline": s["is_baseline"], "submitted_at": s["submitted_at"],
                "status": s["status"], "reason": s["reason"], "wall_s": s["wall_s"],
                "exit_code": s["exit_code"], "multitask": multitask(s["metadata"])}
        for p in parts:
            sc = s.get("scores", {}).get(p)
            item[p] = None if sc is None else {
                "tasks": {t: {k: v for k, v in r.items() if k in ("score", "error")}
                          for t, r in sc["tasks"].items()}, "S": sc["S"]}
        out.append(item)
    return {"submissions": out, "ranking": rows(subs, private=private)}
