"""``python -m likeable``: the ``likeable`` command."""
import sys

from .cli import main

sys.exit(main())
