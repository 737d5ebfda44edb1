"""``python -m lucid`` (and ``torchrun -m lucid``) runs the command line."""
import sys

from .cli import main

sys.exit(main())
