"""The HTR task: everything about it lives in this folder (see fusionbrain.tasks)."""
