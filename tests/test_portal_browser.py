"""The citizen portal in a real browser: Playwright drives Debian's chromium against `hub serve`
with the demo district (generated data, every pipeline ingested, the catalog and the inventory
loaded).

Every page type in German, Lower Sorbian and English: no console error, no request leaving
127.0.0.1, zero serious or critical axe-core violations (axe vendored in tests/browser/).
Screenshots at 1280 and 360 px of each page type go to tests/browser/artifacts/ (printed).
Keyboard: every control is reached with Tab and shows a visible focus. Search and facets
narrow the results with JavaScript and without it; the language switch is remembered.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from chromium import ARTIFACTS, WIDTHS, Watched, axe_problems
from conftest import DemoPortal

LANGUAGES = ("de", "dsb", "en")
# page type -> URL in the demo district (a held public dataset, a metadata-only record, …)
PAGES = {
    "start": "/",
    "search": "/datasets?q=pflege",
    "facets": "/datasets?theme=SOCI&organization=sozialamt",
    "dataset": "/datasets/pflege",
    "record": "/datasets/abfallkalender",
    "organizations": "/organizations",
    "organization": "/organizations/sozialamt",
    "places": "/orte?q=Herzberg",
    "place": "/orte/herzberg-elster",
    "about": "/ueber-die-daten",
    "imprint": "/impressum",
    "privacy": "/datenschutz",
    "accessibility": "/barrierefreiheit",
    "easy": "/leichte-sprache",
    "map-broadband": "/karten/breitband",
    "map-care": "/karten/pflege",
    "map-mobility": "/karten/mobilitaet",
    "map-viewer": "/karten/daten/pflege",
    "signin": "/anmelden",
    "not-found": "/datasets/gibt-es-nicht",
    "bad-request": "/datasets?page=99999999",
}
# what the chrome says in each language (the skip link)
SKIP = {"de": "Zum Inhalt springen", "dsb": "K wopśimjeśeju skócyś", "en": "Skip to content"}


@pytest.fixture(scope="module")
def portal(demo_portal: DemoPortal) -> str:
    return demo_portal.url


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_type_is_clean_and_accessible(portal: str, browser: Any, lang: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for width in WIDTHS:
        watched = Watched(browser, width)
        try:
            for kind, path in PAGES.items():
                sep = "&" if "?" in path else "?"
                seen = len(watched.errors)
                response = watched.page.goto(f"{portal}{path}{sep}lang={lang}")
                expected = {"not-found": 404, "bad-request": 400}.get(kind, 200)
                assert response.status == expected, (kind, lang, response.status)
                if expected != 200:  # chromium reports the error status of the page itself
                    watched.errors[seen:] = [e for e in watched.errors[seen:] if
                                             f"status of {expected}" not in e]
                assert watched.page.locator("html").get_attribute("lang") == lang
                assert watched.page.locator("a.skip").inner_text() == SKIP[lang]
                if width == WIDTHS[0] and (found := axe_problems(watched.page)):
                    problems[f"{kind} {lang}"] = found
                if kind.startswith("map-"):  # axe and the screenshot see the features drawn
                    watched.page.wait_for_selector("#map.loaded")
                if lang == "de" or kind in ("start", "dataset", "place"):
                    shot = ARTIFACTS / f"{kind}-{lang}-{width}.png"
                    watched.page.screenshot(path=str(shot), full_page=True)
                    # no horizontal scrolling on a phone
                    assert watched.page.evaluate(
                        "document.documentElement.scrollWidth <= window.innerWidth + 1"), \
                        (kind, lang, width)
            assert not watched.errors, watched.errors
            assert not watched.outside, watched.outside
        finally:
            watched.close()
    print(f"\nscreenshots: {ARTIFACTS}")
    assert not problems, problems


def test_keyboard_reaches_every_control_with_visible_focus(portal: str, browser: Any) -> None:
    for path in ("/", "/datasets?q=pflege", "/datasets/pflege", "/orte/herzberg-elster"):
        watched = Watched(browser)
        try:
            page = watched.page
            page.goto(portal + path)
            controls = page.evaluate("""() => [...document.querySelectorAll(
                'a[href], input, button, select, [tabindex="0"]')]
                .filter(e => e.offsetParent !== null || e.classList.contains('skip'))
                .map(e => e.outerHTML)""")
            reached, visible = set(), []
            for _ in range(len(controls) + 5):
                page.keyboard.press("Tab")
                state = page.evaluate("""() => { const e = document.activeElement;
                    if (e === document.body) { return ['', true] }  // past the last control
                    const s = getComputedStyle(e);
                    return [e.outerHTML, s.outlineStyle !== 'none' && s.outlineWidth !== '0px'
                            || s.boxShadow !== 'none'] }""")
                reached.add(state[0])
                visible.append(state[1])
            missing = [c for c in controls if c not in reached]
            assert not missing, (path, missing[:5])
            assert all(visible), path
        finally:
            watched.close()


def result_count(page: Any) -> int:
    return page.locator(".found .results > li").count()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_search_and_facets_narrow_the_results(portal: str, browser: Any,
                                              javascript: bool) -> None:
    watched = Watched(browser, javascript=javascript)
    try:
        page = watched.page
        page.goto(portal + "/")
        page.fill("#start-q", "pflege")
        page.locator("form.big-search[action='/datasets'] button").click()
        page.wait_for_url("**/datasets?q=pflege")
        found = result_count(page)
        assert found >= 1
        assert page.locator(".found .results").inner_text().lower().count("pflege") >= 1
        page.goto(portal + "/datasets")
        everything = page.locator(".found h2").inner_text()
        box = page.locator(".facets fieldset").first.locator("input[type=checkbox]").first
        label = page.locator(f"label[for='{box.get_attribute('id')}']").inner_text()
        expected = int(label.rsplit("(", 1)[1].rstrip(")").replace(".", "").replace(",", ""))
        box.check()
        if javascript:  # updated in place, the address bar follows
            page.wait_for_function("() => location.search.includes('organization=')")
            page.wait_for_function(f"() => document.querySelector('.found h2').textContent "
                                   f"!== {everything!r}")
        else:
            page.locator("button.apply").click()
            page.wait_for_url("**organization=**")
        shown = page.locator(".found h2").inner_text()
        assert shown != everything and str(expected) in shown
        assert min(expected, 20) == result_count(page)
        assert not watched.errors and not watched.outside
    finally:
        watched.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_place_search_leads_to_the_answers(portal: str, browser: Any,
                                               javascript: bool) -> None:
    watched = Watched(browser, javascript=javascript)
    try:
        page = watched.page
        page.goto(portal + "/")
        page.fill("#start-place", "Muhlberg")
        page.locator("form.big-search[action='/orte'] button").click()
        page.wait_for_url("**/orte?q=Muhlberg")
        page.locator("section[aria-labelledby=found-h] a", has_text="Mühlberg/Elbe").click()
        page.wait_for_url("**/orte/muehlberg-elbe")
        assert page.locator("h1").inner_text() == "Mühlberg/Elbe"
        for topic in ("Breitband", "Pflege", "Mobilität"):
            assert page.locator("h2", has_text=topic).count() == 1
        assert "Gigabit" in page.locator(".answer .sentence").first.inner_text()
        assert page.locator(".provenance").count() == 3
        assert not watched.errors and not watched.outside
    finally:
        watched.close()


def test_language_switch_is_remembered(portal: str, browser: Any) -> None:
    watched = Watched(browser)
    try:
        page = watched.page
        page.goto(portal + "/")
        assert page.locator("html").get_attribute("lang") == "de"
        page.locator("nav.languages a[lang=dsb]").click()
        page.wait_for_url("**lang=dsb")
        assert page.locator("html").get_attribute("lang") == "dsb"
        assert page.locator("nav.main-nav").inner_text().startswith("Startowy bok")
        page.goto(portal + "/datasets")  # no parameter: the cookie remembers
        assert page.locator("html").get_attribute("lang") == "dsb"
        assert page.locator("label[for=search-q]").inner_text() == "Pytański pojm"
        page.locator("nav.languages a[lang=en]").click()
        page.goto(portal + "/organizations")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").inner_text() == "Organisations"
        page.goto(portal + "/?lang=xx")  # unknown: German, the remembered choice untouched
        assert page.locator("html").get_attribute("lang") == "de"
        page.goto(portal + "/")
        assert page.locator("html").get_attribute("lang") == "en"
    finally:
        watched.close()


def drawn(page: Any) -> int:
    """Features Leaflet shows: markers and vector paths."""
    return page.locator("#map .leaflet-marker-icon, #map path.leaflet-interactive").count()


def shown(page: Any) -> int:
    """Features a point map holds (markers, clustered or not)."""
    return int(page.locator("#map").get_attribute("data-shown"))


def single_marker(page: Any) -> Any:
    """A marker that is not a cluster: clusters are zoomed into with Enter until one shows."""
    for _ in range(10):
        singles = page.locator("#map .leaflet-marker-icon:not(.map-cluster)")
        if singles.count():
            return singles.first
        page.locator("#map .map-cluster").first.focus()
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
    raise AssertionError("no single marker after zooming into clusters")


def listed_rows(page: Any) -> int:
    """The features the list alternative holds (over all its pages)."""
    return int(page.locator("#map-list").get_attribute("data-count"))


def until(page: Any, check: Any) -> None:
    """Wait for `check()` (polled from here: the strict CSP forbids Playwright's string
    predicates); the 10 s bound only guards a hang."""
    for _ in range(100):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page did not get there within 10 s")


@pytest.mark.parametrize(("path", "control", "value"), [
    ("/karten/pflege", "#filter-art", "Tagespflege"),
    ("/karten/mobilitaet", "#filter-typ", "Mitfahrbank"),
])
def test_a_point_map_shows_the_listed_features_and_its_filter_acts(
        portal: str, browser: Any, path: str, control: str, value: str) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}{path}?lang=de")
        page.wait_for_selector("#map.loaded")
        assert shown(page) == listed_rows(page) > 0
        before = shown(page)
        page.select_option(control, value)
        until(page, lambda: listed_rows(page) < before)
        assert 0 < shown(page) == listed_rows(page) < before
        single_marker(page).focus()
        page.keyboard.press("Enter")  # a marker is a keyboard control: Enter opens its popup
        page.wait_for_selector(".leaflet-popup-content")
        assert value in page.locator(".leaflet-popup-content").inner_text()
        assert "#karte=" in page.url or "?" in page.url
        assert f"={value}" in page.url.replace("+", " ") or value in page.url
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_the_mobility_map_filters_by_charging_power(portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/mobilitaet?lang=de")
        page.wait_for_selector("#map.loaded")
        before = drawn(page)
        page.fill("#filter-kw", "1")
        page.dispatch_event("#filter-kw", "change")
        until(page, lambda: listed_rows(page) < before)
        assert 0 < drawn(page) == listed_rows(page) < before
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_the_broadband_map_shades_every_municipality_and_shows_its_figures(
        portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/breitband?lang=en")
        page.wait_for_selector("#map.loaded")
        assert drawn(page) == listed_rows(page) == 33
        labels = page.locator("#map .share-label").all_inner_texts()
        assert len(labels) == 33 and all(t.endswith("%") for t in labels)
        page.check("input[name=stufe][value='100']")
        until(page, lambda: "stufe=100" in page.url)
        assert page.locator("#map .share-label").all_inner_texts() != labels
        page.locator("#map path.leaflet-interactive").first.click(force=True)
        page.wait_for_selector(".leaflet-popup-content")
        assert "≥ 1000 Mbit/s" in page.locator(".leaflet-popup-content").inner_text()
        # the popup lies above the percentage labels: what is at its centre is the popup
        assert page.evaluate("""() => { const r = document.querySelector(
            '.leaflet-popup-content').getBoundingClientRect();
            const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return hit.closest('.leaflet-popup') !== null }""")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "map-broadband-popup-1280.png"))
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_care_locations_are_clustered_and_a_cluster_opens_by_keyboard(
        portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/pflege")
        page.wait_for_selector("#map.loaded")
        clusters = page.locator("#map .map-cluster")
        singles = page.locator("#map .leaflet-marker-icon:not(.map-cluster)")
        assert clusters.count() > 0
        counts = [int(t.split()[0]) for t in clusters.all_inner_texts()]
        assert sum(counts) + singles.count() == shown(page) == listed_rows(page) == 155
        assert clusters.first.get_attribute("role") == "button"
        assert "Einträge" in clusters.first.inner_text()  # its name, for a screen reader
        zoom = page.url.split("#karte=")[1].split("/")[0]
        clusters.first.focus()
        page.keyboard.press("Enter")  # zooms into the cluster
        until(page, lambda: page.url.split("#karte=")[1].split("/")[0] != zoom)
        assert float(page.url.split("#karte=")[1].split("/")[0]) > float(zoom)
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def municipality_box(portal: str, ags: str) -> tuple[float, float, float, float]:
    """West, south, east, north of a municipality's boundary (from the OGC API)."""
    body = httpx.get(f"{portal}/ogc/collections/gemeinden/items",
                     params={"f": "json", "ags": ags}).json()
    points: list[list[float]] = []

    def walk(c: Any) -> None:
        if isinstance(c[0], (int, float)):
            points.append(c)
        else:
            for part in c:
                walk(part)
    for f in body["features"]:
        walk(f["geometry"]["coordinates"])
    assert points
    return (min(p[0] for p in points), min(p[1] for p in points),
            max(p[0] for p in points), max(p[1] for p in points))


@pytest.mark.parametrize("path", ["/karten/breitband", "/karten/pflege", "/karten/mobilitaet"])
def test_the_place_search_moves_the_map_to_the_municipality(
        portal: str, browser: Any, path: str) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(portal + path)
        page.wait_for_selector("#map.loaded")
        zoom = float(page.url.split("#karte=")[1].split("/")[0])
        west, south, east, north = municipality_box(portal, "12062453")
        lat, lon = (float(v) for v in page.url.split("#karte=")[1].split("/")[1:3])
        assert not (west < lon < east and south < lat < north)  # the district's centre
        page.fill("#map-place-q", "Schonborn")  # without the diacritic
        page.keyboard.press("Enter")
        until(page, lambda: page.locator("#map").get_attribute("data-place") == "schoenborn")
        assert "Schönborn" in page.locator("#map-place-status").inner_text()

        def centred() -> bool:  # on the municipality (once the map has moved there)
            lat, lon = (float(v) for v in page.url.split("#karte=")[1].split("/")[1:3])
            return west < lon < east and south < lat < north
        until(page, centred)
        assert float(page.url.split("#karte=")[1].split("/")[0]) >= zoom
        assert page.url.startswith(portal + path)  # the page stayed
        page.fill("#map-place-q", "Gibtesnichtdorf")
        page.keyboard.press("Enter")
        until(page, lambda: "Gibtesnichtdorf" in page.locator("#map-place-status").inner_text())
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_without_javascript_the_maps_place_search_leads_to_the_place_search(
        portal: str, browser: Any) -> None:
    watched = Watched(browser, javascript=False)
    try:
        watched.page.goto(portal + "/karten/pflege")
        watched.page.fill("#map-place-q", "Herzberg")
        watched.page.keyboard.press("Enter")
        watched.page.wait_for_url("**/orte?q=Herzberg")
        assert "Herzberg (Elster)" in watched.page.locator("main").inner_text()
    finally:
        watched.close()


def test_the_layer_switcher_shows_and_hides_layers(portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/mobilitaet")
        page.wait_for_selector("#map.loaded")
        control = page.locator(".leaflet-control-layers")
        assert [t.strip() for t in control.locator("label").all_inner_texts()] == [
            "Gemeindegrenzen", "Mobilitäts-Karte"]
        assert page.locator("#map .leaflet-marker-icon").count() == shown(page) > 0
        control.get_by_label("Mobilitäts-Karte").uncheck()
        assert page.locator("#map .leaflet-marker-icon").count() == 0
        control.get_by_label("Mobilitäts-Karte").check()
        assert page.locator("#map .leaflet-marker-icon").count() == shown(page)
        paths = page.locator("#map path").count()
        control.get_by_label("Gemeindegrenzen").uncheck()
        assert page.locator("#map path").count() < paths
        page.goto(f"{portal}/karten/breitband")
        page.wait_for_selector("#map.loaded")
        assert page.locator("#map .share-label").first.is_visible()
        page.locator(".leaflet-control-layers").get_by_label("Prozentzahlen").uncheck()
        assert not page.locator("#map .share-label").first.is_visible()
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_a_place_page_shows_its_small_map_on_request(portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/orte/herzberg-elster?lang=de")
        assert page.locator("#map").is_hidden()  # Leaflet is not part of the first load
        assert not page.evaluate("'L' in window")
        page.click("#show-map")
        page.wait_for_selector("#map.loaded")
        assert page.locator("#map path").count() == 1  # the municipality's boundary
        assert page.locator("#map .leaflet-marker-icon").count() > 5  # the nearest answers
        page.locator("#map .leaflet-marker-icon").first.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".leaflet-popup-content")
        assert "km" in page.locator(".leaflet-popup-content").inner_text()
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_a_maps_controls_and_markers_are_reached_by_keyboard(portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/pflege?art=Hospiz")
        page.wait_for_selector("#map.loaded")
        markers = page.locator("#map .leaflet-marker-icon").count()
        assert markers > 0
        page.focus("#filter-sort")
        reached: list[str] = []
        for _ in range(markers + 8):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("""() => { const e = document.activeElement;
                const s = getComputedStyle(e);
                const seen = s.outlineStyle !== 'none' && s.outlineWidth !== '0px'
                             || s.boxShadow !== 'none';
                const name = e.className.baseVal === undefined ? e.className : '';
                return name + (seen ? '' : ' UNSEEN') }"""))
        assert sum("leaflet-marker-icon" in r for r in reached) == markers, reached
        assert any("leaflet-control-zoom-in" in r for r in reached), reached
        assert not [r for r in reached if "UNSEEN" in r and "leaflet" in r], reached
    finally:
        watched.close()


def test_the_viewer_draws_the_layer_with_popups_and_the_listed_features(
        portal: str, browser: Any) -> None:
    """155 care services: keyboard-operable markers (data-id: the OGC feature id), each of the
    list's ids among them, Enter opens a popup with the attributes; zooming in reads the
    items of the smaller view."""
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/daten/pflege")
        page.wait_for_selector("#map.loaded")
        until(page, lambda: "155" in page.locator("#map-status").inner_text())
        markers = page.locator("#map .leaflet-marker-icon")
        assert markers.count() == 155 == int(page.locator("#map").get_attribute("data-shown"))
        shown = set(page.eval_on_selector_all("#map .leaflet-marker-icon",
                                              "icons => icons.map(i => i.dataset.id)"))
        listed = page.eval_on_selector_all("#liste tbody tr",
                                           "rows => rows.map(r => r.dataset.id)")
        assert len(listed) == 25 and set(listed) <= shown
        # each category in its own shape, as the legend draws it (not by colour alone)
        shapes, values = (json.loads(page.locator("#map").get_attribute(f"data-{name}"))
                          for name in ("shapes", "legend-values"))
        drawn = page.eval_on_selector_all("#map .leaflet-marker-icon", "icons => icons.map("
                                          "i => [i.title, i.querySelector('path').getAttribute"
                                          "('d')])")
        for title, shape in drawn:
            assert shape == shapes[values.index(title.rsplit(" (", 1)[1][:-1])], title
        assert len({shape for _, shape in drawn}) > 2
        markers.first.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".leaflet-popup-content table.popup-table")
        popup = page.locator(".leaflet-popup-content").inner_text()
        assert "art" in popup and "ort" in popup
        page.keyboard.press("Escape")
        page.focus("#map")
        for _ in range(3):
            page.keyboard.press("+")  # Leaflet's keyboard zoom
        until(page, lambda: int(page.locator("#map").get_attribute("data-shown")) < 155)
        until(page, lambda: "von" in page.locator("#map-status").inner_text())
        assert "#karte=" in page.url
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_the_viewer_draws_polygons_and_many_points_on_canvas(portal: str, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/daten/mobilitaet")
        page.wait_for_selector("#map.loaded")
        until(page, lambda: page.locator("#map").get_attribute("data-shown") == "672")
        assert page.locator("#map canvas").count() == 1  # > 200 points: one canvas
        assert page.locator("#map .leaflet-marker-icon").count() == 0
        page.goto(f"{portal}/karten/daten/gemeinden")
        page.wait_for_selector("#map.loaded")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(".leaflet-popup-content table.popup-table")
        assert "ags" in page.locator(".leaflet-popup-content").inner_text()
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()


def test_without_javascript_a_map_page_is_its_list_and_the_filters_still_work(
        portal: str, browser: Any) -> None:
    watched = Watched(browser, javascript=False)
    page = watched.page
    try:
        page.goto(f"{portal}/karten/mobilitaet")
        assert page.locator("#map").is_hidden()  # no empty map box without JavaScript
        every = listed_rows(page)
        page.select_option("#filter-typ", "Mitfahrbank")
        page.locator("#map-filters button[type=submit]").click()
        page.wait_for_url("**typ=Mitfahrbank**")
        assert 0 < listed_rows(page) < every
        assert set(page.locator("#map-list tbody td:nth-child(2)").all_inner_texts()) == {
            "M Mitfahrbank"}
    finally:
        watched.close()


def test_sign_in_with_totp_and_the_account_page(portal: str, browser: Any,
                                                demo_portal: DemoPortal) -> None:
    """Sign in with password and a TOTP code computed here, in the browser; the account
    page (second factor being set up, with its QR code; then the recovery codes) is clean,
    accessible and fits a phone."""
    from hub.accounts import Accounts
    from hub.catalog import open_catalog
    from hub.config import load_settings

    catalog, vocab, _ = open_catalog(load_settings(demo_portal.root))
    accounts = Accounts(catalog.store, vocab)
    accounts.add_user("browser.test", "sozialamt", "viewer", fullname="Browser Test")
    accounts.set_password("browser.test", "Korrekt Pferd Batterie")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser, WIDTHS[0])
    try:
        page = watched.page
        page.goto(f"{portal}/")
        page.get_by_role("link", name="Anmelden").click()
        page.get_by_label("Benutzername").fill("browser.test")
        page.get_by_label("Passwort").fill("Korrekt Pferd Batterie")
        page.get_by_role("button", name="Anmelden").click()
        assert page.url == f"{portal}/konto"
        page.get_by_role("button", name="Zweiten Faktor einrichten").click()
        assert page.locator(".qr svg").count() == 1
        shots = {"account-totp": page.url}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(ARTIFACTS / f"account-totp-de-{width}.png"),
                            full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth "
                                 "<= window.innerWidth + 1"), width
        assert axe_problems(page) == [], shots
        secret = page.locator(".qr figcaption code").inner_text()
        import pyotp

        page.get_by_label("Code aus der App").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Bestätigen").click()
        assert page.locator(".codes li").count() == 10
        page.screenshot(path=str(ARTIFACTS / "account-codes-de-360.png"), full_page=True)
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        page.screenshot(path=str(ARTIFACTS / "account-codes-de-1280.png"), full_page=True)
        assert axe_problems(page) == []
        assert page.locator("header a.account").inner_text() == "browser.test"
        page.get_by_role("button", name="Abmelden").click()
        assert page.locator("header a.account").inner_text() == "Anmelden"
        assert not watched.errors, watched.errors
        assert not watched.outside, watched.outside
    finally:
        watched.close()
