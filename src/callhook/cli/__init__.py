"""The ``callhook`` command line (Typer + Rich). One module per noun registers its commands."""

from __future__ import annotations

from callhook.cli.main import app, main

__all__ = ["app", "main"]
