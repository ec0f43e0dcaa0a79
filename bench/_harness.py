"""What every case shares: the `Result` row, measuring in a child process, the report.

Only the standard library here: `bench._child` imports this module in every measured process.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"  # generated inputs and scratch space (gitignored)
MARKER = "@@bench-result@@ "
NOISE_SHARE = 0.15  # others' CPU use, in cores, above which a run is retried
PACKAGES = ("numpy", "pandas", "pyarrow", "geopandas", "shapely", "pyproj", "duckdb",
            "pyogrio")


@dataclass
class Result:
    """One row of the report: a metric of a case, the hub's and the baseline's figures.

    `hub` and `baseline` are medians of `hub_runs` and `baseline_runs`; `ratio` is defined by
    `ratio_of` (e.g. "baseline/hub" for a speed-up); `target` says what counts as a pass and
    `ok` whether it was met (None: no target, figure for information only).
    """

    case: str
    metric: str
    unit: str
    hub: float
    baseline: float | None = None
    ratio: float | None = None
    ratio_of: str = ""
    target: str = ""
    ok: bool | None = None
    hub_runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # raw per-run figures, for the JSON
    hard: bool = False  # a promise, not a speed target: a miss fails the run without --strict


def judge(*checks: tuple[str, bool]) -> tuple[str, bool]:
    """Several target clauses as one target text and one verdict."""
    return "; ".join(text for text, _ in checks), all(ok for _, ok in checks)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# -- measuring -------------------------------------------------------------------------------


class MeasureError(RuntimeError):
    pass


def measure(target: str, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """Run `module:function(**kwargs)` in a fresh Python process and return what it reports.

    The function does its own imports and setup, times only the work (time.perf_counter) and
    returns a dict with at least `seconds`. The child adds its peak resident memory:
    `peak_rss_mib` is VmHWM of its own address space (see `_child.py` for why not ru_maxrss
    alone; `ru_maxrss_mib` is reported next to it). The harness adds `others_cpu_s`: CPU time
    the rest of the machine used while the child ran (all busy CPU time, including time stolen
    by the hypervisor, minus the child's own), the measure of how noisy the run was.
    """
    cmd = [sys.executable, "-m", "bench._child", target, json.dumps(kwargs)]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, clock = busy_cpu_s(), time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"{target}: no result within {timeout:g} s") from None
    elapsed, busy1 = time.perf_counter() - clock, busy_cpu_s()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            out = json.loads(line[len(MARKER):])
            if done.returncode == 0:
                others = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - own)
                return {**out, "process_s": round(elapsed, 2),
                        "others_cpu_s": None if others is None else round(others, 2)}
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
    raise MeasureError(f"{target} failed (exit {done.returncode}):\n{tail}")


def measure_calm(target: str, timeout: float, retries: int = 3, pause: float = 20.0,
                 **kwargs: Any) -> dict[str, Any]:
    """`measure`, repeated (up to `retries` more times) while other work disturbed the run.

    A run counts as disturbed when the rest of the machine used more than NOISE_SHARE of one
    core on average while it ran; the next attempt starts after `pause` seconds. The last
    attempt is kept either way, marked `noisy`; the ones thrown away are under `discarded`.
    """
    discarded: list[dict[str, Any]] = []
    while True:
        out = measure(target, timeout, **kwargs)
        others = out.get("others_cpu_s")
        out["noisy"] = others is not None and others > NOISE_SHARE * out["process_s"]
        if not out["noisy"] or len(discarded) >= retries:
            return {**out, "discarded": discarded} if discarded else out
        discarded.append(out)
        print(f"  (run disturbed: others used {others:.1f} CPU s in {out['process_s']:.1f} s; "
              f"again in {pause:g} s)", file=sys.stderr, flush=True)
        time.sleep(pause)


def busy_cpu_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores, steal included)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def rss_mib(key: str = "VmRSS") -> float | None:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), from /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def warm(path: Path) -> None:
    """Read a file once so the first measured run does not pay for a cold page cache."""
    with open(path, "rb") as fh:
        while fh.read(64 << 20):
            pass


# -- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_gib": _mem_total_gib(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "git": _git("describe", "--always", "--dirty"),
        # uncommitted changes to the measured code (others may be editing it meanwhile)
        "hub_uncommitted": (_git("status", "--porcelain", "--", "hub") or "").splitlines(),
        "packages": {},
    }
    for name in PACKAGES:
        try:
            info["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info["packages"][name] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


# -- the report ------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(results: list[Result]) -> str:
    """The results as a plain-text table (also valid Markdown)."""
    head = ("case", "metric", "hub", "baseline", "ratio", "target", "result")
    rows = [head]
    for r in results:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f} ({r.ratio_of})"
        verdict = "—" if r.ok is None else ("PASS" if r.ok else "FAIL")
        rows.append((r.case, r.metric, _fmt(r.hub, r.unit), _fmt(r.baseline, r.unit), ratio,
                     r.target or "—", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_json(path: Path, results: list[Result], info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**info, "results": [asdict(r) for r in results]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
