"""`make audit`: pip-audit over the locked requirements (requirements/*.txt).

Exits 1 with every finding not accepted in requirements/audit-ignore.txt. When the vulnerability
database (PyPI's JSON API, pip-audit's default service) cannot be reached, or answers for none
of the locked packages, it prints a one-line notice and exits 0: an offline machine still tests.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCEPTED = ROOT / "requirements" / "audit-ignore.txt"
LOCKS = [ROOT / "requirements" / "dev.txt", ROOT / "requirements" / "bench.txt"]
# The last line of pip-audit's traceback when it could not talk to the database at all.
UNREACHABLE = re.compile(r"ConnectionError|ProxyError|Timeout|SSLError|NameResolution")


class AuditError(Exception):
    """The audit could not be run as asked (a bad accepted-findings file, pip-audit failing)."""


def accepted(path: Path) -> dict[str, str]:
    """Accepted vulnerability IDs and why, from `path` (`ID reason`, `#` comments)."""
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        ident, _, reason = line.partition(" ")
        if not reason.strip():
            raise AuditError(f"{path.name}:{number}: {ident} has no reason; write why it is "
                             "accepted after the ID")
        found[ident] = reason.strip()
    return found


def pip_audit(locks: list[Path], ignore: list[str]) -> dict[str, Any] | None:
    """pip-audit's JSON report over `locks`; None when the database cannot be reached."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--progress-spinner",
                   "off", "--format", "json", "--output", str(report)]
        command += [arg for lock in locks for arg in ("-r", str(lock))]
        command += [arg for ident in ignore for arg in ("--ignore-vuln", ident)]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if report.exists() and report.stat().st_size:
            return json.loads(report.read_text())
    last = (run.stderr.strip().splitlines() or [""])[-1]
    if UNREACHABLE.search(last):
        print(f"pip-audit skipped: vulnerability database not reachable ({last[:160]})")
        return None
    raise AuditError(f"pip-audit failed (exit {run.returncode}):\n{run.stderr.strip()}")


def findings(report: dict[str, Any]) -> list[str]:
    """One line per known vulnerability in the report."""
    lines = []
    for dep in report["dependencies"]:
        for vuln in dep.get("vulns", []):
            aliases = ", ".join(vuln.get("aliases", []))
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            summary = (vuln.get("description") or "").strip().split("\n")[0][:200]
            lines.append(f"{dep['name']} {dep['version']}: {vuln['id']}"
                         f"{f' ({aliases})' if aliases else ''}, fixed in {fixed}: {summary}")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locks", nargs="*", type=Path, default=LOCKS,
                        help="hashed requirements files (default: requirements/dev.txt, "
                             "requirements/bench.txt)")
    parser.add_argument("--accepted", type=Path, default=ACCEPTED,
                        help="accepted findings, `ID reason` a line")
    args = parser.parse_args(argv)
    try:
        report = pip_audit(args.locks, list(accepted(args.accepted)))
    except AuditError as exc:
        print(exc, file=sys.stderr)
        return 2
    if report is None:
        return 0
    found = findings(report)
    if found:
        print(f"pip-audit: {len(found)} known vulnerabilities in the locked requirements "
              f"(update the lock with `make lock ARGS=--upgrade-package NAME`, or accept one "
              f"in {args.accepted.name} with a reason):")
        print("\n".join(f"  {line}" for line in found))
        return 1
    deps = report["dependencies"]
    skipped = sorted(d["name"] for d in deps if "skip_reason" in d)
    if deps and len(skipped) == len(deps):
        print(f"pip-audit skipped: the vulnerability database answered for none of the "
              f"{len(deps)} locked packages ({deps[0]['skip_reason']})")
    elif skipped:
        print(f"pip-audit: no known vulnerabilities in {len(deps) - len(skipped)} locked "
              f"packages; not audited (database had no answer): {', '.join(skipped)}")
    else:
        print(f"pip-audit: no known vulnerabilities in {len(deps)} locked packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
