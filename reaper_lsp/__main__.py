"""`python -m reaper_lsp` runs the same entry point as the `reaper-lsp` script."""

from reaper_lsp.cli import main

raise SystemExit(main())
