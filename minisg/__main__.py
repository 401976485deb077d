"""`python -m minisg ...` is the `minisg` command."""
import sys

from .cli import main

sys.exit(main())
