from .version import __version__ as __version__
from .version import __version_info__ as __version_info__

__all__ = ["__version__", "__version_info__", "load_order"]

def load_order() -> list[str]: ...
