"""The ``sim`` backend: the real TFLM interpreter on the host, behind a pseudo-terminal.

``device`` is the backend (registered as ``sim``); ``process`` starts and stops the child
that ``child`` runs; ``engine`` is TFLM under the board's limits with the cost model's
cycle estimates; ``double`` is a test double for protocol tests; ``link`` throttles the
child's link to a baud rate.
"""

from harness.devices.sim.device import SimDevice, SimOptions, default_model

__all__ = ["SimDevice", "SimOptions", "default_model"]
