"""`python -m bot` entry point."""
import os
import sys

# Threads of torch/FAISS sleep instead of spinning while they wait: on a small shared machine spinning
# made answers many times slower under load (benchmarks/README.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main

sys.exit(main())
