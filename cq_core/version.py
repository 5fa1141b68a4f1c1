"""Package and numerics versions.

``NUMERICS_VERSION`` changes whenever a change to the kernel, the integrators or the noise
stream can change stored numbers. Every stored cell records it, and the pipeline reruns cells
whose recorded numerics version differs (README.md, "The sweep pipeline").
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cq-sweep")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+unknown"

NUMERICS_VERSION = "3"

__all__ = ["__version__", "NUMERICS_VERSION"]
