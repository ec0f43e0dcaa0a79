"""A demo hub project for the CKAN API tests (test_ckan_api.py, test_ckan_roundtrip.py).

Built as a data manager would: `hub ingest gemeinden`, `hub catalog load`, `hub catalog import`
of the Dateninventur (83 records, internal and restricted ones among them), a few records of
our own (`hub catalog add`), users of four roles and their tokens (`hub user add`, `hub token
create`). The commands run in this process through the CLI's own entry point (Click's runner):
starting ~20 `hub` processes would cost a second each. Tests of the CLI itself use `hub_cli`.

What the tests compare API answers with ("ground truth") is read from the catalog directly
(`Catalog.names` and `Catalog.get`), never through the API or the search engine behind it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ckanapi
import yaml
from conftest import all_in_folder, hub_settings
from typer.testing import CliRunner

from hub.access import ADMIN
from hub.catalog import open_catalog
from hub.catalog.checklist import checklist, current_version
from hub.catalog.model import Record
from hub.cli import app
from hub.config import load_settings
from hub.store import Store

REPO = Path(__file__).resolve().parents[1]
# user -> (organisation, role)
USERS = {"ann": ("landkreis-elbe-elster", "admin"), "sam": ("sozialamt", "editor"),
         "kat": ("kataster-vermessung", "editor"), "vic": ("sozialamt", "viewer")}
EU_THEMES = {"agri", "econ", "educ", "ener", "envi", "gove", "heal", "intr", "just", "regi",
             "soci", "tech", "tran"}
BASE = {"license": "dl-by-de/2.0", "frequency": "ANNUAL"}
# records of our own: hidden ones with resources, tags and an extent (to catch leaks), and a
# public one with resources for resource_search
EXTRA_RECORDS = [
    {**BASE, "name": "zuckerwatte-intern", "title": "Zuckerwatte Verkaufsstände (intern)",
     "description": "Interne Liste der Zuckerwattestände.", "publisher": "sozialamt",
     "access": "internal", "keywords": ["Zuckerwatte-Intern"], "themes": ["SOCI"],
     "bbox": [13.2, 51.5, 13.3, 51.6],
     "distributions": [{"title": "Zuckerwatte intern", "url": "https://example.org/zw-intern.csv"}]},
    {**BASE, "name": "zuckerwatte-sozial", "title": "Zuckerwatte Hilfeempfänger",
     "description": "Nur für das Sozialamt.", "publisher": "umweltamt", "access": "restricted",
     "restricted_to": ["sozialamt"], "keywords": ["Zuckerwatte-Sozial"], "themes": ["HEAL"],
     "bbox": [13.2, 51.5, 13.3, 51.6],
     "distributions": [{"title": "Zuckerwatte sozial", "url": "https://example.org/zw-sozial.csv"}]},
    {**BASE, "name": "zuckerwatte-kataster", "title": "Zuckerwatte Flurstücke",
     "description": "Nur für das Katasteramt.", "publisher": "umweltamt", "access": "restricted",
     "restricted_to": ["kataster-vermessung"], "keywords": ["Zuckerwatte-Kataster"],
     "themes": ["ENVI"], "bbox": [13.2, 51.5, 13.3, 51.6],
     "distributions": [{"title": "Zuckerwatte Kataster",
                        "url": "https://example.org/zw-kataster.csv"}]},
    {**BASE, "name": "stadtplan-finsterwalde", "title": "Stadtplan Finsterwalde",
     "description": "Stadtplan mit Straßenverzeichnis.", "publisher": "kataster-vermessung",
     # public: it passes the publication checklist (a metadata-only record)
     "contact": {"name": "Kataster", "email": "kataster@example.org"}, "data_held": False,
     "access_note": "Die Stadt Finsterwalde hält Plan und Verzeichnis.",
     "keywords": ["Stadtplan"], "themes": ["REGI"], "bbox": [13.6, 51.6, 13.75, 51.7],
     "distributions": [
         {"title": "Stadtplan Finsterwalde (PDF)", "format": "PDF",
          "url": "https://example.org/stadtplan-finsterwalde.pdf"},
         {"title": "Straßenverzeichnis", "description": "Alle Straßen mit Hausnummernbereich",
          "url": "https://example.org/strassenverzeichnis-finsterwalde.csv"}]},
]

runner = CliRunner()


def run_hub(root: Path, *args: str, store: Path | None = None) -> str:
    """`hub ARGS` in this process; checked; returns stdout."""
    result = runner.invoke(app, [*args, "--root", str(root), "--store",
                                 str(store or root / "store")])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def new_token(root: Path, user: str, *args: str, store: Path | None = None) -> tuple[str, str]:
    """`hub token create USER`: (token id, secret); the secret is the last line of stdout."""
    out = run_hub(root, "token", "create", user, *args, store=store).strip().splitlines()
    assert out[0].startswith("Token "), out
    return out[0].split()[1], out[-1]


def ready_without_data(root: Path, names: list[str]) -> list[str]:
    """The records of `names` (in the project at `root`) that pass its own publication
    checklist: what another hub, which holds none of their data, takes as public — it sees
    the data held here as linked (hub.catalog.checklist)."""
    catalog = open_catalog(load_settings(root, root / "store"))[0]
    records = [catalog.get(name, ADMIN) for name in names]
    return [r.name for r in records
            if r and all(i.ok for i in checklist(r, current_version(catalog.store, r)))]

def copy_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("catalog", "pipelines", "schemas"):
        # without the derived breitband-gemeinden: `hub ingest gemeinden` would derive it
        # again and fail for want of breitband, which these projects do not ingest
        shutil.copytree(REPO / folder, root / folder,
                        ignore=shutil.ignore_patterns("breitband-gemeinden.yaml"))
    return root


# A project `build` made, kept by the settings it was made under (every HUB_* variable: the
# database and the file storage it wrote to): a later `build` under the same settings copies
# it, as it was right after the build, instead of running the ~30 commands again.
_BUILT: dict[tuple[tuple[str, str], ...], tuple[Path, dict[str, str]]] = {}


def _built_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="hub-ckan-project-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def build(root: Path) -> dict[str, str]:
    """The demo project at `root` with data, catalog and users; returns user -> token.

    Built once per process and settings when its database and files are in the project's
    folder (no HUB_DATABASE_URL or HUB_STORAGE_URL), then copied into an empty `root`."""
    settings = hub_settings()
    empty = not root.exists() or not any(root.iterdir())  # nothing of the caller's own yet
    if settings in _BUILT and empty:
        template, tokens = _BUILT[settings]
        shutil.copytree(template, root, ignore=shutil.ignore_patterns("*-shm"),
                        dirs_exist_ok=True)
        return dict(tokens)
    tokens = _build(root)
    if all_in_folder() and empty:
        template = _built_folder() / "project"
        shutil.copytree(root, template, ignore=shutil.ignore_patterns("*-shm"))
        _BUILT[settings] = template, dict(tokens)
    return tokens


def _build(root: Path) -> dict[str, str]:
    copy_project(root)
    run_hub(root, "ingest", "gemeinden")
    run_hub(root, "catalog", "load")
    out = run_hub(root, "catalog", "import", str(root / "catalog/inventory/dateninventur.csv"),
              "--apply")
    assert "83 created" in out, out
    for spec in EXTRA_RECORDS:
        path = root / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        run_hub(root, "catalog", "add", str(path))
    tokens = {}
    for user, (org, role) in USERS.items():
        run_hub(root, "user", "add", user, "--org", org, "--role", role)
        tokens[user] = new_token(root, user)[1]
    return tokens


@dataclass
class Hub:
    """A running hub: project root, store, base URL, tokens by user."""

    root: Path
    url: str
    tokens: dict[str, str]
    store_dir: Path | None = None

    @property
    def store(self) -> Path:
        return self.store_dir or self.root / "store"

    def ckan(self, user: str | None = None, **kwargs: Any) -> ckanapi.RemoteCKAN:
        return ckanapi.RemoteCKAN(self.url, apikey=self.tokens[user] if user else None,
                                  **kwargs)

    def open_store(self) -> Store:
        """The hub's store, on the database the environment names (HUB_DATABASE_URL)."""
        return Store(self.store, load_settings(self.root, self.store).database())

    def records(self) -> list[Record]:
        """Every active record, read from the catalog (not through the API)."""
        catalog, _, _ = open_catalog(load_settings(self.root, self.store))
        found = (catalog.get(name, ADMIN) for name in catalog.names())
        return [r for r in found if r is not None]


def may_see(user: str | None, record: Record) -> bool:
    """The access rules, as the issue states them: internal for every signed-in member of
    staff, restricted for the users of the named organisations, admins see everything."""
    if record.access == "public":
        return True
    if user is None:
        return False
    org, role = USERS[user]
    return role == "admin" or record.access == "internal" or org in record.restricted_to
