"""`ladder serve`: an OpenAI-compatible HTTP API over Ladder strategies (see app.py)."""
