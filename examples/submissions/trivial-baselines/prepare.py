"""Fit the trivial baselines on a built dataset's training split; writes baseline_state.json
beside this file (run it on a copy of this folder, then `fusionbrain challenge pack`).

    python prepare.py --data data/
"""

import argparse
import json
from pathlib import Path

from fusionbrain.challenge.baselines import fit_states

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", required=True, help="a built dataset (fusionbrain data build)")
args = parser.parse_args()
states = fit_states(args.data)
out = Path(__file__).resolve().parent / "baseline_state.json"
out.write_text(json.dumps(states, ensure_ascii=False), encoding="utf-8")
print(f"wrote {out} ({', '.join(states)})")
