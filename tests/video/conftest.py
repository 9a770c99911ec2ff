import sys
from pathlib import Path

# video_testutils.py is imported by plain name under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
