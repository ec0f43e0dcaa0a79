"""Start-up: how long `import hub`, `hub --help` and `hub catalog --help` take, as a ratio to
`python -c pass`.

`startup`  Wall-clock time and peak memory of a fresh interpreter running `import hub`, and of
           the `hub` command (the console script `make install` made) printing its help and a
           group's help, against `python -c pass` measured in the same run (the four
           alternate, `--repeat` × 10 runs each, medians). Target (issue 13): each within
           0.2 s. The ratio to `pass` is what compares across machines and load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench._harness import ROOT, Result, judge, median

CASES = {"startup": "`import hub`, `hub --help`, `hub catalog --help` vs `python -c pass` "
                    "(s, peak MiB)"}
LARGE: frozenset[str] = frozenset()
TARGET_S = 0.2
HUB = Path(sys.executable).with_name("hub")
COMMANDS = {
    "pass": [sys.executable, "-c", "pass"],
    "import hub": [sys.executable, "-c", "import hub"],
    "hub --help": [str(HUB), "--help"],
    "hub catalog --help": [str(HUB), "catalog", "--help"],
}


def _once(cmd: list[str]) -> float:
    """Seconds of one run of `cmd` (its own process), start to exit."""
    clock = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=True, timeout=60)
    return time.perf_counter() - clock


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for cmd in COMMANDS.values():  # one warm-up each: the page cache, .pyc files
        _once(cmd)
    for _ in range(args.repeat * 10):
        for name, cmd in COMMANDS.items():
            times[name].append(_once(cmd))
    memory = {name: _peak_mib(cmd) for name, cmd in COMMANDS.items()}
    base = median(times["pass"])
    out = []
    for name in ("import hub", "hub --help", "hub catalog --help"):
        hub = median(times[name])
        target, ok = judge((f"hub ≤ {TARGET_S:g} s", hub <= TARGET_S))
        out.append(Result("startup", f"{name}: wall time", "s", round(hub, 4), round(base, 4),
                          round(hub / base, 2), "hub/baseline", target, ok,
                          hub_runs=times[name], baseline_runs=times["pass"],
                          note=f"baseline: python -c pass; peak {memory[name]:.0f} MiB "
                               f"(pass: {memory['pass']:.0f} MiB)"))
    return out


def _peak_mib(cmd: list[str]) -> float:
    """Peak resident memory of `cmd`, read by a fresh parent so earlier children do not count."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    done = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60)
    return float(done.stdout.strip())
