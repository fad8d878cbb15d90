"""``python -m activemine``: the command line (see :mod:`activemine.cli`)."""

from activemine.cli import main

main()
