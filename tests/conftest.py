"""Settings for the whole test suite.

Tests send nothing off this machine: PlatformIO's registry is stood in for by a closed
loopback port (``HIL_PIO_REGISTRY``), which is how the suite exercises the offline path
of every lookup that would otherwise ask the real registry.
"""

from __future__ import annotations

import os

os.environ.setdefault("HIL_PIO_REGISTRY", "127.0.0.1:9")
