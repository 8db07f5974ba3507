"""`python -m bot` entry point."""
import sys

from .cli import main

sys.exit(main())
