"""``python -m reproduce.figure6``."""
import sys

from .cli import main

sys.exit(main())
