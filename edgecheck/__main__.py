import sys

from edgecheck.cli import main

sys.exit(main())
