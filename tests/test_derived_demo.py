"""The demo district's derived broadband layer and the data the place answers need: the public
per-municipality aggregate `breitband-gemeinden` with exactly the agreed schema and figures that
add up to the internal grid cells, completion dates of what is being built, and generated
on-demand bus stops inside the district."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely

from hub.store import Store

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.guard  # the demo passes the guard as is
FIELDS = [("ags", "string"), ("gemeinde", "string"), ("haushalte", "integer"),
          ("haushalte_1000", "integer"), ("haushalte_100", "integer"),
          ("anteil_1000", "number"), ("anteil_100", "number"),
          ("haushalte_im_bau", "integer"), ("haushalte_geplant", "integer"),
          ("fertigstellung_bis", "date"), ("stand", "date"), ("geometry", "geojson")]


@pytest.fixture(scope="module")
def demo(demo_district: Path) -> Store:
    """The demo district as `make demo` ingests it (tests/conftest.py), read only."""
    return Store(demo_district / "store")


def test_the_aggregate_has_the_agreed_schema_and_is_public(demo: Store) -> None:
    version = demo.current("breitband-gemeinden")
    assert [(f["name"], f["type"]) for f in version.schema["fields"]] == FIELDS
    assert version.schema["primaryKey"] == ["ags"]
    assert demo.dataset("breitband-gemeinden").access == "public"
    assert demo.dataset("breitband").access == "internal"
    assert [i["dataset"] for i in next(iter(version.source_state.values()))["inputs"]] \
        == ["breitband", "gemeinden"]


def test_the_aggregate_adds_up_to_the_grid_cells(demo: Store) -> None:
    cells = pq.read_table(demo.current("breitband").data_file).to_pylist()
    rows = pq.read_table(demo.current("breitband-gemeinden").data_file).to_pylist()
    assert len(rows) == 33 == len({r["ags"] for r in rows})
    by_ags: dict[str, list[dict]] = {}
    for c in cells:
        by_ags.setdefault(c["ags"], []).append(c)
    for r in rows:
        mine = by_ags[r["ags"]]
        assert r["haushalte"] == sum(c["haushalte"] for c in mine) > 0
        assert r["haushalte_1000"] == sum(c["haushalte"] for c in mine if c["klasse"] == ">=1000")
        assert r["haushalte_100"] == sum(c["haushalte"] for c in mine
                                         if c["klasse"] in (">=1000", "100-1000"))
        assert r["anteil_1000"] == round(100 * r["haushalte_1000"] / r["haushalte"], 1)
        assert r["anteil_100"] == round(100 * r["haushalte_100"] / r["haushalte"], 1)
        building = [c for c in mine if c["status"] in ("im Bau", "geplant")]
        assert r["haushalte_im_bau"] == sum(c["haushalte"] for c in mine
                                            if c["status"] == "im Bau")
        assert r["haushalte_geplant"] == sum(c["haushalte"] for c in mine
                                             if c["status"] == "geplant")
        assert r["fertigstellung_bis"] == max((c["fertigstellung"] for c in building),
                                              default=None)
        assert r["stand"] == dt.date(2026, 6, 30)
        assert shapely.from_wkb(r["geometry"]).geom_type in ("Polygon", "MultiPolygon")
    assert sum(r["haushalte"] for r in rows) == sum(c["haushalte"] for c in cells)


def test_cells_being_built_have_a_completion_date(demo: Store) -> None:
    cells = pq.read_table(demo.current("breitband").data_file)
    status = cells.column("status")
    done = cells.column("fertigstellung")
    building = pc.not_equal(status, "verfügbar")
    assert pc.all(pc.is_valid(done.filter(building))).as_py()
    assert pc.all(pc.is_null(done.filter(pc.invert(building)))).as_py()
    assert pc.min(done).as_py() > dt.date(2026, 6, 30)  # after the reference date


def test_generated_on_demand_bus_stops_lie_in_the_district(demo: Store) -> None:
    stops = pq.read_table(demo.current("mobilitaet").data_file).to_pylist()
    generated = [s for s in stops if s["typ"] == "Rufbus-Haltestelle"
                 and s["betreiber"] and "generiert" in s["betreiber"]]
    district = shapely.union_all(shapely.from_wkb(
        pq.read_table(demo.current("gemeinden").data_file).column("geometry").to_pylist()))
    points = shapely.from_wkb([s["geometry"] for s in generated])
    assert len(generated) >= 100
    assert shapely.contains(district, points).all()
    municipalities = pq.read_table(demo.current("gemeinden").data_file).to_pylist()
    served = {m["ags"] for m in municipalities
              if shapely.contains(shapely.from_wkb(m["geometry"]), points).any()}
    assert len(served) == 33  # every municipality has a stop to answer with
    assert all(s["name"].startswith("Rufbus ") and s["id"].startswith("EE-RB-")
               for s in generated)


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        subprocess.run([sys.executable, str(REPO / "pipelines" / "generate_demo_data.py"),
                        "--out", str(out)], check=True, capture_output=True)
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    assert {"breitband.zip", "rufbus_haltestellen.csv"} <= set(outputs[0])
