"""Training: one loop for Fusion and Single-task modes, DDP, energy, predict, experiment.

torch is imported inside functions of the CLI modules only; ``engine``, ``train`` and
``checkpoint`` import it at module level (they are never imported by ``fusionbrain --help``).
"""
