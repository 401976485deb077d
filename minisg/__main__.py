"""`python -m minisg ...` is the `minisg` command."""
import sys

from .tools.cli import main

sys.exit(main())
