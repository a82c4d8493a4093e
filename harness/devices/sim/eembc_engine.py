"""The simulated board's engine as the EEMBC device end needs it.

The MLPerf Tiny runner sends uint8 RGB; the reference firmware subtracts 128 on the device
to get the int8 input, and so does this adapter. Scores go back dequantised with the
output's own scale and zero point, as the reference firmware prints them, and each
inference reports the cost model's estimate of its time on the board the sim stands in
for, which the device end's :class:`~harness.link.eembc_device.EstimateClock` adds up
into the ``m-lap-us`` lap times (the host's wall clock says nothing about a Cortex-M4).
"""

from __future__ import annotations

import numpy as np

from harness.devices.sim.engine import TflmEngine
from harness.link import eembc
from harness.link.eembc_device import EembcOutcome
from harness.link.messages import DType


class TflmEembcEngine:
    """Runs a :class:`TflmEngine` on EEMBC input bytes and reports float scores."""

    def __init__(self, engine: TflmEngine) -> None:
        facts = engine.facts()
        if not facts.ready:
            raise ValueError(facts.status_text or "no model loaded")
        self.engine = engine
        self.inputs = facts.inputs
        self.outputs = facts.outputs
        self.input_bytes = sum(s.nbytes for s in facts.inputs)
        self.signed = bool(facts.inputs) and facts.inputs[0].dtype == DType.INT8
        self.us_per_run = max(1, round(engine.cycles_total * 1e6 / max(1, facts.clock_hz)))

    def infer(self, data: bytes) -> EembcOutcome:
        self.engine.set_input(eembc.from_eembc_input(data, self.signed))
        run = self.engine.invoke(False)
        scores: list[float] = []
        pos = 0
        for spec in self.outputs:
            q = np.frombuffer(run.output, dtype=spec.dtype.numpy_name, count=spec.elements, offset=pos)
            pos += spec.nbytes
            if spec.dtype == DType.FLOAT32:
                scores += [float(v) for v in q]
            else:
                scores += [float((int(v) - spec.zero_point) * spec.scale) for v in q]
        return EembcOutcome(tuple(scores), self.us_per_run)
