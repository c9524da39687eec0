"""RSP crypto building blocks (placeholder; the full re-export list follows)."""

__all__: list[str] = []
