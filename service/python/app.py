"""The Python service's entry point (the registry runs this file): servekit.service.

Run: python service/python/app.py --model-dir data/models/minilm-sentiment --port 8080
"""

from __future__ import annotations

import os
import sys

# torch is installed for the exporter only; keep transformers from importing it here.
os.environ.setdefault("USE_TORCH", "0")
from servekit.service import main

if __name__ == "__main__":
    sys.exit(main())
