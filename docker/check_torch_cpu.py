"""Build-time guard (Dockerfile): fail the build if a CUDA torch or GPU wheels got installed."""
import importlib.metadata as md
import sys

import torch

gpu = sorted(
    d.metadata["Name"]
    for d in md.distributions()
    if d.metadata["Name"].lower().startswith(("nvidia-", "nvidia_", "triton"))
)
if torch.version.cuda is not None or gpu:
    sys.exit(f"not a CPU-only torch: torch {torch.__version__} cuda={torch.version.cuda} gpu packages={gpu}")
print(f"torch {torch.__version__}: CPU-only, no GPU packages")
