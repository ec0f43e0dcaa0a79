"""Projects for the `hub.open` tests (tests/test_client*.py, tests/test_notebooks.py), built by
the real pipeline: a small one made for the tests (`build`); the demo district comes from
tests/conftest.py (`demo_district`, `demo_copy`).

Datasets (points in the test district):
- `orte`    public, owned by the Sozialamt; three versions, v1 removed by retention (keep 2)
- `intern`  internal, owned by the Sozialamt
- `geheim`  restricted, owned by the Breitbandkoordination (seen by its staff only)
Users: `anna` (viewer, Sozialamt), `bernd` (viewer, Breitbandkoordination), `edith` (editor,
Sozialamt), each with an API token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conftest import CENTRE, Project

REPO = Path(__file__).resolve().parents[1]

FIELDS = [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
          {"name": "art", "type": "string"}, {"name": "plaetze", "type": "integer"},
          {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]
ARTEN = ("Hospiz", "Pflegeheim", "Tagespflege")
VERSIONS = 3  # of `orte`; retention keeps the last two


def rows(n: int, shift: int = 0) -> list[tuple[int, str, str, int, float, float]]:
    """`n` points around the district's centre (x grows with the id: 0.01° each)."""
    return [(i, f"Ort {i + shift}", ARTEN[i % 3], 10 * (i % 7),
             round(CENTRE[0] - 0.2 + 0.01 * i, 5), round(CENTRE[1] - 0.1 + 0.01 * (i % 20), 5))
            for i in range(1, n + 1)]


def write_csv(path: Path, data: list[tuple]) -> None:
    path.write_text("id;name;art;plaetze;lon;lat\n" + "".join(
        ";".join(str(v) for v in row) + "\n" for row in data), encoding="utf-8")


@dataclass
class ClientSite:
    project: Project
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.project.root


def build(root: Path) -> ClientSite:
    project = Project(root)
    district = project.root / "catalog" / "district.yaml"
    district.write_text(district.read_text() + "default_license: dl-by-de/2.0\n")
    project.schema("punkte", FIELDS, primaryKey=["id"])
    source = {"crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}
    for name, access, org in (("orte", "public", "sozialamt"), ("intern", "internal", "sozialamt"),
                              ("geheim", "restricted", "breitbandkoordination")):
        write_csv(project.data / f"{name}.csv", rows(40))
        project.pipeline(name, "punkte", {"path": f"data/{name}.csv", **source}, access=access,
                         organization=org, attribution=f"Testdaten <{org}> & Co")
        report = project.ingest(name)
        assert report.status == "committed", (name, report.error, report.violations[:3])
    for shift in range(1, VERSIONS):  # orte v2, v3: the names change
        write_csv(project.data / "orte.csv", rows(40, shift))
        assert project.ingest("orte").status == "committed"
    assert project.store.apply_retention("orte", keep=2) == [1]
    loaded = project.cli("catalog", "load")
    assert loaded.exit_code == 0, loaded
    site = ClientSite(project)
    for user, org, role in (("anna", "sozialamt", "viewer"),
                            ("bernd", "breitbandkoordination", "viewer"),
                            ("edith", "sozialamt", "editor")):
        assert project.cli("user", "add", user, "--org", org, "--role", role).exit_code == 0
        made = project.cli("token", "create", user)
        assert made.exit_code == 0, made
        site.tokens[user] = made.output.strip().splitlines()[-1]
    return site
