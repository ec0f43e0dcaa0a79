"""The Python API's reference: every public name has a docstring, the examples in the docs run
(doctest on hub.client against the demo district), and `make docs` (pdoc) builds it."""

from __future__ import annotations

import doctest
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import demo_copy

import hub.client

pytestmark = pytest.mark.guard  # the demo passes the guard against near-empty versions as is


def public_names() -> list[tuple[str, object]]:
    """hub.client's public names and the public methods and properties of its classes."""
    found = []
    for name in hub.client.__all__:
        obj = getattr(hub.client, name)
        found.append((name, obj))
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member)
                                                 or isinstance(member, property)):
                    found.append((f"{name}.{attr}", member))
    return found


def test_every_public_name_is_documented() -> None:
    names = public_names()
    assert len(names) > 25
    missing = [name for name, obj in names if not (inspect.getdoc(obj) or "").strip()
               or (inspect.isclass(obj) and obj.__doc__ is None)]
    assert not missing, missing
    for name in ("open", "Hub.read", "Hub.sql", "Hub.explore", "Hub.map", "Hub.register"):
        assert any(n == name for n, _ in names), name


def test_the_examples_in_the_docs_run(demo_district: Path,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    demo = demo_copy(demo_district, tmp_path_factory.mktemp("docs") / "demo")
    result = doctest.testmod(hub.client, extraglobs={"HUB": str(demo)},
                             optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted >= 5 and result.failed == 0


def test_make_docs_builds_the_reference(tmp_path: Path) -> None:
    """What `make docs` runs (pdoc over hub.client), into a temporary folder."""
    subprocess.run([sys.executable, "-m", "pdoc", "-o", str(tmp_path), "hub.client"],
                   check=True, capture_output=True, timeout=300)
    page = (tmp_path / "hub" / "client.html").read_text(encoding="utf-8")
    for name in ("open", "Hub", "NotFound", "VersionRemoved", "explore"):
        assert f'id="{name}"' in page or f'id="Hub.{name}"' in page, name
