"""`python -m puzzleloop ...`: the same command line as the `puzzleloop` script."""

import sys

from puzzleloop.cli import main

sys.exit(main())
