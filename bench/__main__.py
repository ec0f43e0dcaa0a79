"""`python -m bench [CASE ...] [--large] [--repeat N] [--list]` (see bench/README.md).

Every module `bench/<name>.py` (not starting with `_`) is a group of cases: it defines
`CASES` (case name -> one-line description), `LARGE` (the opt-in ones) and
`run(cases, args) -> list[Result]`. Naming a module runs its cases, naming a case runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pkgutil
import sys
import time
from types import ModuleType

import bench
from bench._harness import DATA_DIR, ROOT, Result, machine, table, write_json

REPORT = DATA_DIR / "last-run.json"


def modules() -> dict[str, ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                   if not m.name.startswith("_"))
    return {name: importlib.import_module(f"bench.{name}") for name in names}


def select(wanted: list[str], large: bool, found: dict[str, ModuleType],
           ) -> list[tuple[ModuleType, list[str]]]:
    """Which cases of which modules to run, in the modules' own order."""
    chosen: set[str] = set()
    for name in wanted:
        if name in found:
            chosen |= {c for c in found[name].CASES if large or c not in found[name].LARGE}
        elif any(name in m.CASES for m in found.values()):
            chosen.add(name)
        else:
            known = sorted({*found, *(c for m in found.values() for c in m.CASES)})
            raise SystemExit(f"unknown case {name!r}; known: {', '.join(known)}")
    if not wanted:
        chosen = {c for m in found.values() for c in m.CASES if large or c not in m.LARGE}
    plan = [(m, [c for c in m.CASES if c in chosen]) for m in found.values()]
    return [(m, cases) for m, cases in plan if cases]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case or module names (default: all but large)")
    parser.add_argument("--large", action="store_true",
                        help="also run the large opt-in cases (e.g. ingest-10m)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per side; the median is reported (default 3)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a figure misses its target")
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test versions of the cases that have one (load: 20 clients "
                             "for 5 s)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    found = modules()
    if args.list:
        for m in found.values():
            for case, text in m.CASES.items():
                print(f"{case:<14} {text}" + ("  [--large]" if case in m.LARGE else ""))
        return 0
    plan = select(args.cases, args.large, found)
    started = dt.datetime.now(dt.UTC)
    info = {"command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
            "started": started.isoformat(timespec="seconds"), "repeat": args.repeat,
            "machine": machine()}
    clock = time.perf_counter()
    results: list[Result] = []
    errors: list[str] = []
    for module, cases in plan:
        for case in cases:  # one at a time, so a failing case costs only its own figures
            try:
                results += module.run([case], args)
            except Exception as exc:
                errors.append(f"{case}: {type(exc).__name__}: {exc}")
                print(f"[{case}] ERROR {errors[-1]}", file=sys.stderr, flush=True)
    info["errors"] = errors
    info["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info["elapsed_s"] = round(time.perf_counter() - clock, 1)
    info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    write_json(REPORT, results, info)
    print()
    print(table(results))
    for r in results:
        if r.note:
            print(f"  {r.case} {r.metric}: {r.note}")
    failed = [r for r in results if r.ok is False]
    print(f"\n{len(results)} figures, {len(failed)} missed target(s), {len(errors)} error(s); "
          f"written to {REPORT.relative_to(ROOT)}")
    if errors:
        return 2
    # by default a missed speed target is a finding, not a crash; a broken promise (`hard`:
    # failed requests under load, growing memory) always fails
    return 1 if failed and (args.strict or any(r.hard for r in failed)) else 0


if __name__ == "__main__":
    sys.exit(main())
