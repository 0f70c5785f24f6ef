"""The C2C task: everything about it lives in this folder (see fusionbrain.tasks)."""
