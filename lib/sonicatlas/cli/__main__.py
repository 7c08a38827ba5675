"""``python -m sonicatlas.cli``: the same command as ``sonicatlas``."""

from sonicatlas.cli import main

main()
