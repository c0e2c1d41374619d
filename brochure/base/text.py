"""Text as people search it: without case or accents."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower case without accents, and single spaces: 'María  José' -> 'maria jose'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())
