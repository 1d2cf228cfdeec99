"""The ``comp`` command line: thin typer wrappers over importable functions."""
