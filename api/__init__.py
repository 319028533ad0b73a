"""The HTTP API of the dispatch engine (FastAPI): schemas in, engine calls, schemas out.

Build an app with :func:`create_app`; run it with :func:`api.serve.serve` (``dispatch serve``).
"""

from api.app import create_app
from api.settings import Principal, Role, Settings

__all__ = ["Principal", "Role", "Settings", "create_app"]
