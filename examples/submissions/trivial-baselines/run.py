"""Challenge entry point: the project's trivial baselines on /input, written to /output.

Reads its fitted state from baseline_state.json (made by prepare.py on the training split).
The input and output folders are /input and /output in the sandbox; $FB_INPUT / $FB_OUTPUT
name them everywhere (also under --unsafe-no-sandbox).
"""

import json
import os
from pathlib import Path

from fusionbrain.challenge.baselines import predict_folder

here = Path(__file__).resolve().parent
states = json.loads((here / "baseline_state.json").read_text(encoding="utf-8"))
done = predict_folder(states, os.environ.get("FB_INPUT", "/input"),
                      os.environ.get("FB_OUTPUT", "/output"))
print("predicted:", ", ".join(done))
