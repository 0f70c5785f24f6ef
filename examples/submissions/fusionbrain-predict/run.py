"""Challenge entry point: `fusionbrain predict` with the model packed in ./model.

A body taken from a PyPI package is loaded from the FusionBrain cache packed in ./cache
(prepare.py copies it), since the sandbox has no network and no writable cache.
"""

import os
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
env = dict(os.environ)
if (here / "cache").is_dir():
    env["FUSIONBRAIN_CACHE"] = str(here / "cache")
cmd = [sys.executable, "-m", "fusionbrain", "predict", "--model", str(here / "model"),
       "--input", os.environ.get("FB_INPUT", "/input"),
       "--output", os.environ.get("FB_OUTPUT", "/output"), "--no-energy", "--no-progress"]
sys.exit(subprocess.call(cmd, env=env))
