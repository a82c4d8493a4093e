"""Data set build speed and memory: 1 vs 2 workers, 2,000 vs 10,000 sources.

Sources are JPEG files drawn by the synthetic generator (128 px, person/ and
non_person/ folders, with EXIF that the build must audit and strip), so the build
does the real work: decode, audit, resize, re-encode, hash, write. Each build runs in
a fresh child process so peak RSS is measured per build (parent and workers).

    python benchmarks/bench_data_build.py            # 10,000 sources (about 2-3 minutes)
    python benchmarks/bench_data_build.py --n 3000   # quicker

Target (issue 3): >= 200 images/s with 2 workers; RSS flat from 2,000 to 10,000.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import ExifTags, Image

from harness.data.synth import render

SOURCE_SIZE = 128
SEED = 2024


def _write_source(args: tuple[Path, int]) -> None:
    root, i = args
    img, label, _ = render(SEED, i, SOURCE_SIZE, None)
    exif = Image.Exif()
    exif[0x013B] = "Bench Artist"
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = "2024:01:01 12:00:00"
    folder = root / ("person" if label else "non_person")
    img.convert("RGB").save(folder / f"{i:06d}.jpg", quality=90, exif=exif)


def make_sources(root: Path, n: int) -> None:
    """Generate ``n`` source JPEGs (kept between runs in ``root``)."""
    stamp = root / f".complete-{n}"
    if stamp.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    for d in ("person", "non_person"):
        (root / d).mkdir(parents=True)
    with mp.get_context("forkserver").Pool(2) as pool:
        pool.map(_write_source, [(root, i) for i in range(n)], chunksize=64)
    stamp.touch()


def subset(src: Path, dest: Path, n: int) -> None:
    """The first ``n`` sources as hard links (no copy, same bytes)."""
    if (dest / f".complete-{n}").exists():
        return
    shutil.rmtree(dest, ignore_errors=True)
    files = sorted(src.glob("*/*.jpg"), key=lambda p: p.name)[:n]
    for f in files:
        target = dest / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, target)
        except OSError:
            shutil.copyfile(f, target)
    for d in ("person", "non_person"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / f".complete-{n}").touch()


def _tree_rss_kib(root_pid: int) -> int:
    """Resident memory of ``root_pid`` and all its descendants (Linux /proc)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            status = (d / "status").read_text()
        except OSError:
            continue
        parent[int(d.name)] = int(fields[1])
        rss[int(d.name)] = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(rss.get(p, 0) for p in tree)


def _tree_cpu_seconds(root_pid: int) -> float:
    """CPU time of ``root_pid``'s descendants, including reaped ones (cutime/cstime).

    Pool workers are children of the forkserver, which reaps them, so its cumulative
    child times hold the workers' CPU after the pool has closed.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == root_pid:  # a direct child (the forkserver)
            total += sum(int(f) for f in fields[11:15]) / ticks
    return total


def measure(src: Path, out: Path, workers: int) -> dict[str, float]:
    """One build in this process; returns rate and peak RSS (MiB) of the process tree."""
    from harness.data.importer import import_dataset

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], _tree_rss_kib(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    c0 = time.process_time()
    import_dataset(src, out, license_id="cc0-1.0", workers=workers, force=True)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0 + _tree_cpu_seconds(os.getpid())
    done.set()
    sampler.join(timeout=5)
    n = json.loads((out / "dataset.json").read_text())["total"]
    return {
        "images": n,
        "seconds": dt,
        "rate": n / dt,
        "cpu_ms_per_image": 1000 * cpu / n,
        "rss_parent_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_tree_mib": peak[0] / 1024,
    }


def run_child(src: Path, out: Path, workers: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--measure", str(src), str(out), str(workers)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if res.returncode != 0:
        raise SystemExit(f"build failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="number of sources (default 10000)")
    ap.add_argument("--small", type=int, default=2_000, help="smaller count for the memory check")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temp folder)")
    ap.add_argument("--measure", nargs=3, metavar=("SRC", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        src, out, workers = args.measure
        print(json.dumps(measure(Path(src), Path(out), int(workers))))
        return 0

    work = args.work or Path(tempfile.gettempdir()) / "hil-bench-data"
    big, small = work / f"sources-{args.n}", work / f"sources-{args.small}"
    t0 = time.perf_counter()
    make_sources(big, args.n)
    subset(big, small, args.small)
    print(f"sources: {args.n} JPEGs at {SOURCE_SIZE}px ready in {time.perf_counter() - t0:.1f}s ({big})")

    one = run_child(big, work / "out-1", 1)
    two = run_child(big, work / "out-2", 2)
    low = run_child(small, work / "out-small", 2)
    print(f"build {args.n} images, 1 worker : {one['rate']:7.1f} images/s ({one['seconds']:.1f}s)")
    print(f"build {args.n} images, 2 workers: {two['rate']:7.1f} images/s ({two['seconds']:.1f}s)")
    print(f"speed-up 2 vs 1 workers: {two['rate'] / one['rate']:.2f}x   (target rate >= 200 images/s)")
    print(
        f"CPU per image: {one['cpu_ms_per_image']:.2f} ms (1 worker), {two['cpu_ms_per_image']:.2f} ms "
        f"(2 workers, incl. parent); on 2 idle cores that bounds the rate at "
        f"{2000 / two['cpu_ms_per_image']:.0f} images/s"
    )
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} cores: wall-clock rates are not reliable")
    for label, r in ((f"{args.small:>6}", low), (f"{args.n:>6}", two)):
        print(
            f"peak RSS at {label} sources (2 workers): parent {r['rss_parent_mib']:.0f} MiB, "
            f"parent + workers {r['rss_tree_mib']:.0f} MiB"
        )
    ratio = two["rss_tree_mib"] / low["rss_tree_mib"]
    print(f"peak RSS ratio {args.n} / {args.small} sources: {ratio:.2f} (flat is ~1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
