"""Folding of German and Lower Sorbian letters (hub.text) in the catalog's search: a Lower
Sorbian title was tokenised to broken words ("Chóśebuz" → `ch ebuz`) and could not be found
as "Chosebuz"; umlauts are found written as ä, ae and a."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from hub.access import ANONYMOUS
from hub.catalog import open_catalog
from hub.catalog.index import INDEX_VERSION, Query
from hub.catalog.model import validate
from hub.config import load_settings
from hub.text import fold, slug

REPO = Path(__file__).resolve().parents[1]
RECORDS = [
    {"name": "serbska-karta", "title": "Karta Chóśebuz",
     "description": "Kórta za Chóśebuz a Błota.", "keywords": ["Łužyca"]},
    {"name": "sportstaetten-elbe", "title": "Sportstätten Mühlberg/Elbe",
     "description": "Turnhallen und Plätze.", "keywords": ["Sport"]},
]


@pytest.fixture
def catalog(tmp_path: Path):
    shutil.copytree(REPO / "catalog", tmp_path / "catalog")
    catalog, vocab, _ = open_catalog(load_settings(tmp_path, tmp_path / "store"))
    catalog.upsert_many([validate({
        "publisher": "kataster-vermessung", "license": "dl-by-de/2.0", "themes": ["REGI"],
        "frequency": "ANNUAL", **spec}, vocab) for spec in RECORDS])
    return catalog


def found(catalog, q: str) -> list[str]:
    return [r.name for r in catalog.search(Query(q=q, rows=100), ANONYMOUS).records]


@pytest.mark.parametrize("q", ["Chóśebuz", "Chosebuz", "chosebuz", "CHÓŚEBUZ", "Chóśe",
                               "chose", "Blota", "Błota", "Luzyca", "łužyca"])
def test_lower_sorbian_words_are_found_with_and_without_their_marks(catalog, q: str) -> None:
    assert found(catalog, q) == ["serbska-karta"]


@pytest.mark.parametrize("q", ["Mühlberg", "Muehlberg", "Muhlberg", "mühl", "muhl", "muehl",
                               "Sportstatten", "Sportstätten", "\"Sportstatten Muhlberg\""])
def test_umlauts_are_found_as_written_out_and_as_plain_vowels(catalog, q: str) -> None:
    assert found(catalog, q) == ["sportstaetten-elbe"]


def test_a_store_indexed_before_the_folding_is_indexed_again(catalog) -> None:
    """The index layout's version changed with the tokenising: an existing store's derived
    tables are rebuilt when the catalog is opened."""
    db = sqlite3.connect(catalog.store.root / "hub.sqlite")
    with db:  # the words as the old tokenising wrote them, under the old index version
        db.execute("DELETE FROM catalog_words WHERE field IN ('title', 'description')")
        db.execute("INSERT INTO catalog_words SELECT rid, 'title', 0, 'ch' FROM catalog_records")
        db.execute("UPDATE catalog_meta SET value = '4' WHERE key = 'index'")
    db.close()
    assert INDEX_VERSION != "4"
    again, _, _ = open_catalog(load_settings(catalog.store.root.parent,
                                             catalog.store.root))
    assert found(again, "Chosebuz") == ["serbska-karta"]


def test_fold_and_slug() -> None:
    assert fold("Chóśebuz") == "chosebuz"
    assert fold(" ŹRĚDŁO ") == "zredlo"
    assert fold("Mühlberg") == "muehlberg" and fold("Mühlberg", umlauts="a") == "muhlberg"
    assert fold("Mu\u0308hlberg") == "muehlberg"  # decomposed umlaut (as macOS writes it)
    assert fold("Straße") == fold("STRASSE") == "strasse"
    assert slug("Herzberg (Elster)") == "herzberg-elster"
    assert slug("Mühlberg/Elbe") == "muehlberg-elbe"
    assert slug("Dolna Łužyca – Chóśebuz") == "dolna-luzyca-chosebuz"
