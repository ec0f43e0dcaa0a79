"""The portal's place pages over HTTP on the demo district (`hub serve`, tests/conftest.py):
every municipality's page says the numbers /api/orte/{slug} answers, written with Babel's CLDR
data; the place search finds names and postcodes and suggests places for an unknown one; bad
input gets a clear page, never a 5xx; the languages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import DemoPortal
from markupsafe import escape

from hub.web.portal import i18n
from hub.web.security import HTML_POLICY

PLACE_LINK = re.compile(r'href="/orte/([a-z0-9-]+)"')


@pytest.fixture(scope="module")
def client(demo_portal: DemoPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_portal.url, timeout=60) as c:
        yield c


def shown(text: Any) -> str:
    """A value as the page's HTML holds it (escaped by Jinja2)."""
    return str(escape(str(text)))


def expected_phrases(answer: dict[str, Any], lang: i18n.Language) -> list[str]:
    """What the page must say for an answer of /api/orte/{slug}, in the words of `lang`."""
    answers, phrases = answer["answers"], [shown(answer["place"]["name"])]
    figures = answers["broadband"]["figures"]
    phrases.append(lang.gettext("In %(place)s können %(share)s der Haushalte Gigabit "
                                "(≥ 1000 Mbit/s) bekommen, %(share100)s mindestens 100 Mbit/s.")
                   % {"place": f'<span lang="de">{shown(answer["place"]["name"])}</span>'
                      if lang.code != "de" else shown(answer["place"]["name"]),
                      "share": lang.percent(figures["share_1000"]),
                      "share100": lang.percent(figures["share_100"])})
    if figures["households_under_construction"]:
        phrases.append(lang.number(figures["households_under_construction"]))
        phrases.append(lang.date(figures["completion_by"]))
    if figures["households_planned"]:
        phrases.append(lang.number(figures["households_planned"]))
    for item in answers["care"]["nearest"]:
        phrases += [shown(item["name"]), lang.km(item["distance_m"])]
        if item["phone"]:
            phrases.append(shown(item["phone"]))
    for category in answers["mobility"]["categories"].values():
        for station in category["nearest"]:
            phrases += [shown(station["name"]), lang.km(station["distance_m"])]
            if station["power_kw"]:
                phrases.append(lang.kw(station["power_kw"]))
    for topic in ("broadband", "care", "mobility"):
        source = answers[topic]["source"]
        phrases += [shown(source["title"]), lang.date(source["date"]),
                    f'href="{source["links"]["items"]}"']
    return phrases


def test_every_municipality_page_says_the_answers_numbers(client: httpx.Client) -> None:
    places = client.get("/api/orte").json()
    assert len(places) == 33  # the demo district's municipalities
    listed = set(PLACE_LINK.findall(client.get("/orte").text))
    assert listed == {p["slug"] for p in places}
    de = i18n.language("de")
    for place in places:
        page = client.get(f"/orte/{place['slug']}")
        assert page.status_code == 200, place
        assert page.headers["content-security-policy"] == HTML_POLICY
        html = page.text
        answer = client.get(f"/api/orte/{place['slug']}").json()
        missing = [p for p in expected_phrases(answer, de) if p not in html]
        assert not missing, (place["slug"], missing)
        assert "Luftlinie" in html and "Woher stammen diese Angaben?" in html
        assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html


@pytest.mark.parametrize("code", ["dsb", "en"])
def test_a_place_page_in_another_language(demo_portal: DemoPortal, code: str) -> None:
    with httpx.Client(base_url=demo_portal.url, timeout=60) as c:  # its own cookie
        answer = c.get("/api/orte/bad-liebenwerda").json()
        page = c.get("/orte/bad-liebenwerda", params={"lang": code})
        assert c.get("/orte").headers["content-language"] == code  # remembered
    assert page.status_code == 200 and page.headers["content-language"] == code
    html = page.text
    assert f'<html lang="{code}">' in html
    missing = [p for p in expected_phrases(answer, i18n.language(code)) if p not in html]
    assert not missing, missing
    assert "Luftlinie" not in html  # the chrome is translated; names stay German, marked
    assert '<h1><span lang="de">Bad Liebenwerda</span></h1>' in html


def test_households_take_cldr_plural_forms() -> None:
    one, many = "Gezählt: %(num)s Haushalt.", "Gezählt: %(num)s Haushalte."
    de = i18n.language("de")
    assert [de.ngettext(one, many, n) % {"num": n} for n in (1, 2)] == \
        ["Gezählt: 1 Haushalt.", "Gezählt: 2 Haushalte."]
    dsb = i18n.language("dsb")
    assert [dsb.ngettext(one, many, n) % {"num": n} for n in (1, 2, 5)] == [
        "Licone: 1 domacnosć.", "Licone: 2 domacnosći.", "Licone: 5 domacnosćow."]
    points = [dsb.ngettext("%(num)s Ladepunkt", "%(num)s Ladepunkte", n) for n in (1, 2, 3, 5)]
    assert len(set(points)) == 4  # singular, dual, few, other


@pytest.mark.parametrize("q,slug", [("Mühlberg", "muehlberg-elbe"), ("muhlberg", "muehlberg-elbe"),
                                    ("Herzberg", "herzberg-elster"), ("04924", "bad-liebenwerda")])
def test_the_place_search_finds_names_and_postcodes(client: httpx.Client, q: str,
                                                    slug: str) -> None:
    page = client.get("/orte", params={"q": q})
    assert page.status_code == 200
    found = page.text.split('id="all-h"')[0]  # the matches, before the list of every place
    assert f'href="/orte/{slug}"' in found
    assert "gefunden" in found


def test_an_unknown_place_gets_suggestions(client: httpx.Client) -> None:
    page = client.get("/orte", params={"q": "Xyzzyhausen"})
    assert page.status_code == 200
    found = page.text.split('id="all-h"')[0]
    assert "Kein Ort" in found and "Meinten Sie einen dieser Orte?" in found
    assert len(PLACE_LINK.findall(found)) == 5
    missing = client.get("/orte/bad-liebenwerd")
    assert missing.status_code == 404 and "<h1>Nicht gefunden</h1>" in missing.text
    assert 'href="/orte/bad-liebenwerda"' in missing.text  # the closest name first offered
    long = client.get("/orte/" + "a" * 300)
    assert long.status_code == 404 and PLACE_LINK.search(long.text)


@pytest.mark.parametrize("q", ["x" * 201, "a\u0000b", "\u0007", "a\x1bb"])
def test_hostile_search_text_gets_a_clear_400_page(client: httpx.Client, q: str) -> None:
    page = client.get("/orte", params={"q": q})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="de">' in page.text and '<p class="error">' in page.text


@pytest.mark.parametrize("q", ["<script>alert(1)</script>", "%' OR 1=1 --", "\"><b>x",
                               "ÄÖÜß Chóśebuz", "   "])
def test_odd_search_text_is_searched_and_escaped(client: httpx.Client, q: str) -> None:
    page = client.get("/orte", params={"q": q})
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<b>x" not in page.text
    assert len(PLACE_LINK.findall(page.text)) >= 33  # never an empty page


def test_the_start_page_has_the_place_search(client: httpx.Client) -> None:
    html = client.get("/").text
    assert 'action="/orte"' in html and 'action="/datasets"' in html
    assert '<label for="start-place">Ort oder Postleitzahl</label>' in html
