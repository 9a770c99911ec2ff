"""`python -m wanvideo ...`: the command line (see wanvideo/app/cli.py)."""
import sys

from .app.cli import main

sys.exit(main())
