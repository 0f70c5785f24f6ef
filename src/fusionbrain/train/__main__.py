"""``python -m fusionbrain.train`` / ``torchrun --nproc-per-node N -m fusionbrain.train``."""

import sys

from fusionbrain.train.train import main

sys.exit(main())
