"""How this folder was made: a tiny C2C (edit decoder) model saved by the code of commit
d05cf3d, before per-task configs (its config.json spells task keys flat: c2c_decoder ...).

    git worktree add /tmp/old d05cf3d
    PYTHONPATH=/tmp/old/src .venv/bin/python tests/data/legacy_model_d05cf3d/make.py DIR

expected.json holds that code's translations; tests/test_task_registry.py loads the folder
with today's code and must get the same.
"""
import json
import sys
from pathlib import Path

import torch

from fusionbrain.model.configuration import preset
from fusionbrain.model.modeling_fusionbrain import FusionBrain
from fusionbrain.tasks.c2c.data import C2CSample

out = Path(sys.argv[1])
pairs = [C2CSample(str(i), j, p) for i, (j, p) in enumerate([
    ("int f ( ) { return 1 ; }", "def f ( ) : NEW_LINE INDENT return 1 NEW_LINE DEDENT"),
    ("int g ( int a ) { return a + 1 ; }", "def g ( a ) : NEW_LINE INDENT return a + 1 NEW_LINE DEDENT"),
    ("void h ( ) { System . out . println ( 2 ) ; }", "def h ( ) : NEW_LINE INDENT print ( 2 ) NEW_LINE DEDENT"),
])]
cfg = preset("tiny").replace(c2c_decoder="edit", c2c_max_phrases=8, htr_height=8)
cfg = FusionBrain.fit_config(cfg, {"C2C": pairs})
model = FusionBrain(cfg, tasks=["C2C"])
g = torch.Generator().manual_seed(7)
with torch.no_grad():  # weights that a fresh build would not have: proves they are loaded
    for p in model.trainable_parameters():
        p.add_(torch.randn(p.shape, generator=g) * 0.5)
model.save_pretrained(out)
java = [s.java for s in pairs] + ["int k ( int b ) { return b * 2 ; }"]
(out / "expected.json").write_text(json.dumps({"java": java, "python": model.translate(java)},
                                              indent=1) + "\n", "utf-8")
print(model.translate(java))
