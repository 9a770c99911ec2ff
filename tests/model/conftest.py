import sys
from pathlib import Path

# Helpers shared by the model tests (model_testutils.py) import by plain name under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
