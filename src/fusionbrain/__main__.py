import sys

from fusionbrain.cli import main

sys.exit(main())
