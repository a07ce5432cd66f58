"""`python -m cgpreset`."""

from .cli import main

main()
