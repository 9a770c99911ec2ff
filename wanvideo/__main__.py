"""`python -m wanvideo ...`: the command line (see wanvideo/cli.py)."""
import sys

from .cli import main

sys.exit(main())
