"""puzzleloop: language models that teach themselves to program through verified self-play."""

__version__ = "0.1.0"
