"""The text summary ``hil bench`` prints and saves as summary.txt.

It is built from run.json alone, so a summary can be remade from any run folder, and it
labels latency with where it came from: a cycle counter on a board is a measurement, the
sim backend's figure is an estimate from the cost model, QEMU counts instructions.
"""

from __future__ import annotations

from typing import Any

from harness.units import basis_of, format_instructions


def _pct(v: Any) -> str:
    return f"{100 * v:.1f} %" if isinstance(v, int | float) else "n/a"


def _ms(us: Any) -> str:
    return f"{us / 1000:.2f} ms" if isinstance(us, int | float) else "n/a"


def _latency_lines(m: dict[str, Any], met: dict[str, Any]) -> list[str]:
    """Instructions as instructions; a time only with the words saying what kind of time it is."""
    basis = basis_of(m)
    lines = []
    if basis.get("count_unit") == "instructions" and met.get("instructions_p50") is not None:
        counter = "Renode's virtual time" if m.get("backend") == "renode" else "QEMU -icount"
        lines.append(
            f"work     {format_instructions(met.get('instructions_p50'))} per inference p50 "
            f"(counted by {counter}; instructions, not time)"
        )
    kind = ("reported" if basis.get("kind") == "reported" else
            "estimated" if basis.get("estimated") else "measured")
    if basis.get("time_unit") == "us" and met.get("latency_us_p50") is not None:
        lines.append(
            f"latency  ({kind}) p50 {_ms(met.get('latency_us_p50'))}, p90 {_ms(met.get('latency_us_p90'))}, "
            f"p99 {_ms(met.get('latency_us_p99'))} - {basis.get('label', 'unknown')}"
        )
    elif basis.get("time_unit") is None:
        lines.append(f"latency  no time figure: {basis.get('label', 'unknown')}")
    return lines


def format_summary(m: dict[str, Any]) -> str:
    board = m.get("board") or {}
    model = m.get("model") or {}
    data = m.get("dataset") or {}
    dev = m.get("device") or {}
    met = m.get("metrics") or {}
    mem = m.get("memory") or {}
    settings = m.get("settings") or {}
    port = f" on {m['port']}" if m.get("port") else ""
    lines = [
        f"run {m.get('run_id', '?')}: {m.get('status', '?')}",
        f"board    {board.get('id', '?')} ({board.get('name', '?')}) via {m.get('backend', '?')}{port}, "
        f"engine {dev.get('engine') or 'unknown'}, firmware {dev.get('firmware_version', '?')}"
        f"{', protocol ' + str(m['protocol']) if m.get('protocol') not in (None, 'v1') else ''}",
        f"model    {model.get('name', '?')} ({model.get('bytes', 0):,} B, "
        f"sha256 {str(model.get('sha256', '?'))[:12]})",
        f"data     {data.get('name', '?')} ({data.get('count', '?')} images"
        f"{', synthetic' if data.get('synthetic') else ''}"
        f"{', split ' + settings['split'] if settings.get('split') else ''})",
    ]
    n, n_ok = met.get("n", 0), met.get("n_ok", 0)
    lines.append(f"images   {n} measured, {n_ok} ok, {met.get('n_error', 0)} errors")
    if n_ok:
        lines.append(
            f"accuracy {_pct(met.get('accuracy'))} (95 % CI {_pct(met.get('accuracy_ci_low'))} - "
            f"{_pct(met.get('accuracy_ci_high'))}) at threshold {settings.get('threshold', '?')}"
        )
        lines.append(
            f"confusion tp {met.get('tp')} fp {met.get('fp')} tn {met.get('tn')} fn {met.get('fn')}; "
            f"FPR {_pct(met.get('fpr'))} FNR {_pct(met.get('fnr'))} "
            f"precision {_pct(met.get('precision'))} recall {_pct(met.get('recall'))}"
        )
        lines.extend(_latency_lines(m, met))
        diff = met.get("host_max_abs_diff_q")
        by = f" (by at most {diff} quantisation step{'s' if diff != 1 else ''})" if diff else ""
        lines.append(
            f"host     {met.get('host_mismatches', 0)} of {n_ok} outputs differ from the host reference{by}"
        )
    if mem.get("unavailable"):
        lines.append(f"memory   {mem['unavailable']}")
    elif mem:
        arena = mem.get("arena_used")
        lines.append(
            f"memory   arena {arena if arena is not None else '?':,} B of {mem.get('ram_for_arena', 0):,} B "
            f"RAM for it; model {mem.get('model_bytes', 0):,} B of {mem.get('flash_for_model', 0):,} B flash"
            if isinstance(arena, int)
            else f"memory   model {mem.get('model_bytes', 0):,} B"
        )
    elf = (m.get("firmware") or {}).get("elf")
    if isinstance(elf, dict):
        tflm = (m.get("firmware") or {}).get("tflm") or {}
        lines.append(
            f"firmware ELF flash {elf.get('flash', 0):,} B, static RAM {elf.get('ram', 0):,} B "
            f"(read from the {m.get('backend')} image; TFLM {tflm.get('version', '?')}, "
            f"tree checksum {str(tflm.get('checksum', '?'))[:12]})"
        )
    firmware_port = (m.get("firmware") or {}).get("port")
    if firmware_port:
        lines.append(f"port     {firmware_port}")
    link = m.get("link") or {}
    if link:
        per_image = link.get("bytes_per_image")
        size = f"{per_image / 1000:.1f} kB" if isinstance(per_image, int | float) else "n/a"
        lines.append(
            f"link     {link.get('resends', 0)} resends, {link.get('crc_failures', 0)} CRC failures, "
            f"{link.get('resyncs', 0)} resyncs, {link.get('timeouts', 0)} timeouts; {size} per image, "
            f"efficiency {_pct(link.get('efficiency'))} (tensor bytes / bytes on the wire)"
        )
    for err in (m.get("errors") or [])[:5]:
        lines.append(f"error    {err}")
    extra = len(m.get("errors") or []) - 5
    if extra > 0:
        lines.append(f"error    ... and {extra} more (see run.json)")
    return "\n".join(lines) + "\n"
