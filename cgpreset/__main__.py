"""`python -m cgpreset`."""

from cgpreset.cli import main

main()
