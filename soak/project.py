"""The soak's project: a catalog as in production and public point datasets of several sizes."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from soak.faults import DISTRICT_BBOX, write_points

REPO = Path(__file__).resolve().parents[1]
FIELDS = [{"name": "id", "type": "string", "constraints": {"required": True}},
          {"name": "wert", "type": "number"},
          {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]
RETENTION = 4  # versions kept per dataset: enough to roll back, small enough for the tmpfs


@dataclass
class Dataset:
    name: str
    rows: int  # rows of a usual new version (varied by the soak)
    #: committed (version, rows) pairs, oldest first; the last is what must be served
    committed: list[tuple[int, int]] = field(default_factory=list)


def build(root: Path, datasets: list[Dataset]) -> None:
    """Write the project at `root`: catalog, schema, one pipeline per dataset (no data yet)."""
    catalog = root / "catalog"
    shutil.copytree(REPO / "catalog" / "vocabularies", catalog / "vocabularies")
    shutil.copy(REPO / "catalog" / "organizations.yaml", catalog / "organizations.yaml")
    (catalog / "district.yaml").write_text(yaml.safe_dump({
        "name": "Soakkreis", "ags": "12062", "bbox": list(DISTRICT_BBOX),
        "extent_buffer_km": 5, "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    (root / "schemas").mkdir()
    (root / "schemas" / "punkte.json").write_text(
        json.dumps({"fields": FIELDS, "primaryKey": ["id"]}), encoding="utf-8")
    (root / "pipelines" / "data").mkdir(parents=True)
    for d in datasets:
        (root / "pipelines" / f"{d.name}.yaml").write_text(yaml.safe_dump({
            "title": f"Soak {d.name}", "organization": "sozialamt", "schema": "punkte",
            "access": "public", "retention": RETENTION,
            "max_shrink_share": 1,  # the soak varies sizes on purpose
            "source": {"path": f"data/{d.name}.csv", "crs": "EPSG:4326",
                       "geometry": {"lon": "lon", "lat": "lat"}}}), encoding="utf-8")


def source(root: Path, dataset: Dataset, rows: int, seed: int) -> None:
    """New source data for `dataset`: `rows` points drawn with `seed`."""
    write_points(root / "pipelines" / "data" / f"{dataset.name}.csv", rows, seed)
