"""FusionBrain: one multimodal, multitask model for the Fusion Brain challenge tasks.

Importing the package is cheap: torch and transformers are imported only by the
modules that need them (``fusionbrain.model``, ``fusionbrain.train``, task heads).
"""

__version__ = "0.1.0"
