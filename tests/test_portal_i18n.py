"""The portal's message catalogs: in step with the templates and code (Babel's extraction with
hub/web/portal/babel.cfg), every message translated into Lower Sorbian and English with the
same placeholders, plural forms from Babel's CLDR data (four in Lower Sorbian), and the
strings that still need a native speaker's review marked and counted in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.web.portal import i18n

PORTAL = Path(i18n.__file__).parent
REPO = PORTAL.parents[2]
REVIEW = "review:"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def method_map() -> list[tuple[str, str]]:
    sections = re.findall(r"^\[(\w+): ([^\]]+)\]", (PORTAL / "babel.cfg").read_text(), re.M)
    return [(pattern, method) for method, pattern in sections]


def extracted() -> set[str | tuple[str, str]]:
    found = set()
    options = {"portal/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _, _, message, _, _ in extract_from_dir(str(PORTAL.parent), method_map(), options):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def ids(cat: Catalog) -> set[str | tuple[str, str]]:
    return {m.id for m in cat if m.id}


def test_catalogs_are_in_step_with_the_sources() -> None:
    sources = extracted()
    assert len(sources) > 100  # the extraction found the templates and the code
    template = catalog(PORTAL / "locale" / "messages.pot")
    assert ids(template) == sources, "run the update steps of README 'Portal'"
    for code in ("dsb", "en"):
        assert ids(catalog(i18n.po_path(code), code)) == sources, code


@pytest.mark.parametrize("code,forms", [("dsb", 4), ("en", 2)])
def test_every_message_is_translated_with_its_placeholders(code: str, forms: int) -> None:
    cat = catalog(i18n.po_path(code), code)
    assert cat.num_plurals == forms
    assert cat.plural_forms == Catalog(locale=code).plural_forms  # CLDR's rule, via Babel
    for message in cat:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert len(strings) == (forms if message.pluralizable else 1), message.id
        singular = message.id[0] if message.pluralizable else message.id
        plural = message.id[1] if message.pluralizable else message.id
        wanted = set(PLACEHOLDER.findall(singular)) | set(PLACEHOLDER.findall(plural))
        for text in strings:
            assert text.strip(), (code, message.id)
            assert set(PLACEHOLDER.findall(text)) <= wanted, (code, message.id, text)
            if not message.pluralizable:
                assert set(PLACEHOLDER.findall(text)) == wanted, (code, message.id, text)


def test_review_marks_are_counted_in_the_readme() -> None:
    cat = catalog(i18n.po_path("dsb"), "dsb")
    marked = sum(1 for m in cat if m.id and any(c.startswith(REVIEW) for c in m.user_comments))
    total = sum(1 for m in cat if m.id)
    assert 0 < marked <= total
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{marked} of the {total} Lower Sorbian messages" in readme


def test_lower_sorbian_has_four_plural_forms_at_run_time() -> None:
    dsb = i18n.language("dsb")
    rows = [dsb.ngettext("%(num)s Zeile", "%(num)s Zeilen", n) for n in (1, 2, 3, 5, 101, 102)]
    assert len(set(rows[:4])) == 4  # one, two, few, other
    assert rows[4] == rows[0] and rows[5] == rows[1]  # 101 and 102 as 1 and 2 (n % 100)
    assert i18n.language("en").ngettext("%(num)s Zeile", "%(num)s Zeilen", 2) == "%(num)s rows"


def test_unknown_codes_fall_back_to_german_and_are_not_remembered() -> None:
    assert i18n.chosen("dsb", None) == (i18n.language("dsb"), True)
    assert i18n.chosen(None, "en") == (i18n.language("en"), False)
    assert i18n.chosen("xx", "en") == (i18n.language("de"), False)
    assert i18n.chosen("", "dsb")[0].code == "de"
    assert i18n.chosen(None, "<script>") == (i18n.language("de"), False)


def test_dates_and_numbers_come_from_cldr() -> None:
    assert i18n.language("de").date("2026-03-01T10:00:00") == "1. März 2026"
    assert i18n.language("en").date("2026-03-01") == "March 1, 2026"
    assert i18n.language("dsb").date("2026-03-01") == "1. měrca 2026"
    assert i18n.language("de").number(51279) == "51.279"
    assert i18n.language("en").number(51279) == "51,279"


@pytest.mark.parametrize("code", sorted(i18n.LANGUAGES))
def test_small_counts_are_written_as_cldr_writes_them(code: str) -> None:
    """`number` writes 0–999 itself (the usage and report tables are full of them): the same
    text as Babel's, in every language; other numbers still come from Babel."""
    from babel.numbers import format_decimal

    language = i18n.language(code)
    for value in (*range(0, 1001), -1, -999, 1234, 0.5, 999.5, 10**6):
        assert language.number(value) == format_decimal(value, locale=code), value
