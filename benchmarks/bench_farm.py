"""The same device benched directly and through a labgrid place, paced and unpaced.

One sim child per pacing (its pseudo-terminal throttled to 115200 baud, and unthrottled)
is benched twice in one run: over its pty directly, then through a labgrid place whose
exporter's ser2net serves that same pty over RFC 2217 on 127.0.0.1 (coordinator,
exporter and ser2net started here, as in tests/integration/test_farm.py). The figure is
images/s through the place over images/s direct, counting only the measured images
(wall time of the whole run, minus the same run's fixed costs measured with one image).

Target (issue 19): >= 0.95 at 115200 baud. Unpaced, pyserial's RFC 2217 reader (one
Python thread parsing telnet escapes byte by byte) is the bound; that ratio is reported.

    python benchmarks/bench_farm.py [--images N] [--paced-images N]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.bench.api import run_bench  # noqa: E402
from harness.bench.request import BenchRequest  # noqa: E402
from harness.boards import load_board  # noqa: E402
from harness.devices.sim.process import SimChild  # noqa: E402
from harness.farm import open_place  # noqa: E402
from harness.models.zoo import resolve_model  # noqa: E402
from tests.integration import farm_lab  # noqa: E402

TARGET_PACED = 0.95


def timed(request: BenchRequest) -> float:
    started = time.perf_counter()
    run_bench(request, place_opener=open_place)
    return time.perf_counter() - started


def per_image(base: BenchRequest, n: int) -> float:
    """Seconds per measured image: (run of n - run of 1) / (n - 1), so set-up cancels."""
    one = timed(BenchRequest(**{**base.__dict__, "limit": 1}))
    many = timed(BenchRequest(**{**base.__dict__, "limit": n}))
    return (many - one) / (n - 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=40, help="images per unpaced run (default 40)")
    ap.add_argument("--paced-images", type=int, default=6, help="images per 115200-baud run (default 6)")
    args = ap.parse_args()
    if farm_lab.missing():
        print(f"bench_farm: {farm_lab.missing()}")
        return 2
    logging.basicConfig(level=logging.WARNING)
    board = load_board("nano33")
    model = resolve_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lab = farm_lab.Lab(root)
        children = {"paced": SimChild(model, board, baud=115200), "unpaced": SimChild(model, board)}
        try:
            ptys = {k: c.start() for k, c in children.items()}
            lab.start_coordinator()
            lab.add_exporter("bench", "".join(farm_lab.serial_resources(k, p) for k, p in ptys.items()))
            for k in ptys:
                lab.create_place(f"farm-{k}", [f"bench/{k}/NetworkSerialPort"], {"board": "nano33"})
            print(f"model {model.name}, sim standing in for nano33; machine load: see `uptime`")
            print(f"{'link':<22}{'direct s/img':>14}{'place s/img':>14}{'ratio':>8}")
            results = {}
            for kind, n in (("paced", args.paced_images), ("unpaced", args.images)):
                common = {"model": str(model), "out_dir": root / "runs", "warmups": 0,
                          "baud": 115200 if kind == "paced" else None}
                direct = per_image(BenchRequest(port=ptys[kind], **common), n)
                placed = per_image(BenchRequest(place=f"farm-{kind}", coordinator=lab.address, **common), n)
                results[kind] = direct / placed
                label = "115200 baud" if kind == "paced" else "unpaced"
                print(f"{label:<22}{direct:>14.3f}{placed:>14.3f}{results[kind]:>8.3f}")
        finally:
            lab.close()
            for c in children.values():
                c.stop()
    ok = results["paced"] >= TARGET_PACED
    print(f"paced ratio {results['paced']:.3f} (target >= {TARGET_PACED}): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
