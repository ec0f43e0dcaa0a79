"""The supply chain: every dependency bounded, declared where it is used and used where it is
declared; the hashed locks in requirements/ satisfy pyproject.toml; `make audit` fails on a
known vulnerability and steps aside, with a notice, when its database cannot be reached."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from conftest import free_port
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
RUNTIME: list[str] = PYPROJECT["project"]["dependencies"]
BUILD = [line.split("#")[0].strip() for line in (ROOT / "requirements" / "build.in").open()
         if line.split("#")[0].strip()]
# Each lock and the requirements it must satisfy (Makefile `lock`).
LOCKS = {"dev.txt": RUNTIME + EXTRAS["test"] + EXTRAS["demo"] + EXTRAS["dev"]
         + EXTRAS["postgres"] + BUILD,
         "runtime.txt": RUNTIME + BUILD,
         "bench.txt": RUNTIME + EXTRAS["bench"] + BUILD}
# The code that uses each group: its imports must be declared there (or in the runtime).
USERS = {"hub": [], "tests": ["test", "postgres"], "pipelines": ["demo"], "bench": ["bench"],
         "soak": [], "deploy": ["test", "postgres"]}  # deploy/cluster.py: `make cluster`
# Declared, used without an import of their own.
INDIRECT = {
    "uvloop": "uvicorn's event loop, chosen when installed",
    "httptools": "uvicorn's HTTP parser (hub/web/server.py subclasses its protocol)",
    "python-multipart": "starlette's multipart parser (CKAN uploads)",
    "pytest-timeout": "pytest plugin: `timeout` in [tool.pytest.ini_options]",
    "pytest-xdist": "pytest plugin: `make test` runs the suite with `-n`",
    "ruff": "`make lint`",
    "pip-audit": "`make audit`",
    "uv": "`make lock`",
    "ipykernel": "the Jupyter kernel nbclient starts (tests/test_notebooks.py)",
    "pdoc": "`make docs`, run as `python -m pdoc` (tests/test_client_docs.py)",
    "moto": "the S3 endpoint of the tests, run as `python -m moto.server` (deploy/s3.py)",
    "flask": "moto's server's HTTP app",
    "flask-cors": "moto's server's HTTP app",
}


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name → (pinned version, number of hashes) of a `uv pip compile --generate-hashes` file."""
    found: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=\S)", lock.read_text()):
        if match := re.match(r"([A-Za-z0-9._-]+)==(\S+)", block):
            name = canonicalize_name(match[1])
            found[name] = (match[2], block.count("--hash=sha256:"))
    return found


@cache  # the scans are the file's cost: each folder is read once (the tests only read)
def imports(folder: Path) -> dict[str, str]:
    """Top-level third-party modules imported anywhere under `folder` → one file importing it.
    Fixtures are data, not code the project runs: tests/fixtures/ckan-2.11/recording/ holds the
    scripts that recorded a real CKAN (run once, in CKAN's own environment); bench/data/ holds
    the benchmarks' generated inputs (gitignored), copies of the demo project among them."""
    local = {p.stem for p in folder.rglob("*.py")} | set(USERS)
    found: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*.py") if "fixtures" not in p.parts
                       and p.relative_to(ROOT).parts[:2] != ("bench", "data")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@cache
def provided_by() -> dict[str, list[str]]:
    """Importable module → the installed distributions providing it (read once: it walks
    every installed distribution's file list)."""
    return packages_distributions()


def distributions(module: str) -> set[str]:
    """The distributions that provide an importable module (its own name when not installed)."""
    return {canonicalize_name(d) for d in provided_by().get(module, [module])}


def test_every_dependency_has_a_bounded_major_version() -> None:
    everything = RUNTIME + [r for extra in EXTRAS.values() for r in extra] + BUILD
    everything += PYPROJECT["build-system"]["requires"]
    for requirement in map(Requirement, everything):
        operators = {spec.operator for spec in requirement.specifier}
        assert "==" in operators or {">=", "<"} <= operators, (
            f"{requirement}: give a range `>=x.y,<x+1` (or `==` where a release must match)")


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_satisfies_pyproject_with_hashes(lock: str) -> None:
    pinned = pins(ROOT / "requirements" / lock)
    for requirement in map(Requirement, LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in requirements/{lock}: run `make lock`"
        version, _ = pinned[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, outside {requirement}: run `make lock`")
    unhashed = sorted(name for name, (_, hashes) in pinned.items() if not hashes)
    assert not unhashed, f"requirements/{lock}: no hashes for {unhashed}"


def test_build_requirements_match_the_build_system() -> None:
    build = {canonicalize_name(Requirement(r).name): Requirement(r).specifier for r in BUILD}
    for requirement in map(Requirement, PYPROJECT["build-system"]["requires"]):
        assert build.get(canonicalize_name(requirement.name)) == requirement.specifier, (
            f"requirements/build.in must require {requirement} as [build-system] does")


@pytest.mark.parametrize("folder", sorted(USERS))
def test_every_import_is_declared_where_it_is_used(folder: str) -> None:
    declared = names(RUNTIME) | {n for extra in USERS[folder] for n in names(EXTRAS[extra])}
    undeclared = {module: path for module, path in imports(ROOT / folder).items()
                  if not distributions(module) & declared}
    groups = " or ".join(["dependencies", *(f"the `{e}` extra" for e in USERS[folder])])
    assert not undeclared, f"imported but not declared in {groups}: {undeclared}"


@pytest.mark.parametrize("group", ["dependencies", *sorted(EXTRAS)])
def test_every_declared_dependency_is_used(group: str) -> None:
    users = ["hub"] if group == "dependencies" else [
        folder for folder, extras in USERS.items() if group in extras]
    imported = {d for folder in users for module in imports(ROOT / folder)
                for d in distributions(module)}
    declared = names(RUNTIME if group == "dependencies" else EXTRAS[group])
    unused = declared - imported - {canonicalize_name(n) for n in INDIRECT}
    assert not unused, f"declared in {group} but imported nowhere in {users}: {sorted(unused)}"


# ============================================ make audit ==========================================

AUDIT = ROOT / ".ci" / "audit.py"
# requests 2.19.1, which leaks the Authorization header on an https → http redirect
# (CVE-2018-18074); the hash is its wheel's on PyPI. pip-audit never downloads it.
VULNERABLE = ("requests==2.19.1 --hash=sha256:"
              "63b52e3c866428a224f97cab011de738c36aec0185aa91cfacd418b5d58911d1\n")


def audit(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                   "PIP_CACHE_DIR": str(tmp_path / "cache")} | env  # no answer from a cache
    return subprocess.run([sys.executable, str(AUDIT), *args], capture_output=True, text=True,
                          env=environment, timeout=600, check=False)


def test_audit_steps_aside_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    lock = tmp_path / "vulnerable.txt"
    lock.write_text(VULNERABLE)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: every connection refused
    result = audit(tmp_path, str(lock), HTTPS_PROXY=closed, HTTP_PROXY=closed)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pip-audit skipped: vulnerability database "
                                                   "not reachable"), result.stdout


def test_audit_fails_on_a_known_vulnerability_unless_accepted(tmp_path: Path) -> None:
    lock = tmp_path / "vulnerable.txt"
    lock.write_text(VULNERABLE)
    result = audit(tmp_path, str(lock))
    if result.stdout.startswith("pip-audit skipped"):
        pytest.skip(result.stdout.strip())  # no database here: nothing to check against
    assert result.returncode == 1, result.stdout + result.stderr
    assert "requests 2.19.1" in result.stdout and "CVE-2018-18074" in result.stdout
    ident = re.search(r"requests 2\.19\.1: (\S+)", result.stdout)[1]
    accepted = tmp_path / "accepted.txt"
    accepted.write_text(f"{ident} CVE-2018-18074 (with its aliases): the test's own example\n")
    assert audit(tmp_path, str(lock), "--accepted", str(accepted)).returncode == 0


def test_an_accepted_finding_needs_a_reason(tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.txt"
    accepted.write_text("# comment\nPYSEC-2018-28\n")
    result = audit(tmp_path, str(ROOT / "requirements" / "runtime.txt"),
                   "--accepted", str(accepted))
    assert result.returncode == 2
    assert "accepted.txt:2: PYSEC-2018-28 has no reason" in result.stderr
