import sys
from pathlib import Path

# Helpers shared by the sampling tests (sampling_fakes.py) import by plain name under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
