"""Start-up stays light: `import hub` and the `hub` command (up to `--help`) import none of the
heavy libraries; commands, `hub.open` and the server import them when they run. The time is
measured in bench/startup.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "geopandas", "pyarrow", "duckdb", "fastapi", "numpy", "shapely", "pyproj",
         "folium", "httpx", "uvicorn")


def imported_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()[-1]
    return {name.split(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize("code", [
    "import hub",
    "import hub.cli",
    "import sys\nfrom hub.cli import app\nsys.argv = ['hub', '--help']\n"
    "try:\n    app()\nexcept SystemExit:\n    pass",
    "import sys\nfrom hub.cli import app\nsys.argv = ['hub', 'catalog', '--help']\n"
    "try:\n    app()\nexcept SystemExit:\n    pass",
], ids=["import hub", "import hub.cli", "hub --help", "hub catalog --help"])
def test_no_heavy_library_at_start(code: str) -> None:
    assert imported_after(code).isdisjoint(HEAVY), sorted(imported_after(code) & set(HEAVY))



def test_hub_open_is_there_without_importing_it_first() -> None:
    """`hub.open` is reached through the package (imported on first use)."""
    loaded = imported_after("import hub\nassert callable(hub.open)\nassert hub.ClientError")
    assert "pyarrow" not in loaded  # opening a hub imports its libraries, naming it does not
