"""The portal's languages: German (the source language of every message), Lower Sorbian and
English, from the gettext catalogs in `locale/` (managed with Babel, see README "Portal").

The `.po` files are read when the server starts (no compiled `.mo` files to keep in step);
dates, numbers and plural forms come from Babel's CLDR data for the chosen locale.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from babel.units import format_unit

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
DEFAULT = "de"
# code -> the language's own name (shown in the switch, each in its own language)
LANGUAGES = {"de": "Deutsch", "dsb": "Dolnoserbski", "en": "English"}
COOKIE = "lang"
SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


@dataclass(frozen=True)
class Language:
    """One language of the portal: its messages and CLDR formats."""

    code: str
    translations: NullTranslations

    @cached_property
    def locale(self) -> Locale:
        return Locale.parse(self.code)

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def date(self, value: str | dt.date | None) -> str:
        """An ISO date or timestamp as the language writes a date ("2. Dezember 2026")."""
        if not value:
            return ""
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return format_date(day, "long", locale=self.locale)

    def number(self, value: float | int | None) -> str:
        if value is None:
            return ""
        if type(value) is int and 0 <= value < 1000:  # as CLDR writes it in every language
            return str(value)  # here, without Babel's 25 µs (tables of counts are mostly 0)
        return format_decimal(value, locale=self.locale)

    def size(self, n: int) -> str:
        """A size in bytes as the language writes numbers, in binary units to one decimal
        ("2,0 MiB"; a no-break space before the unit)."""
        value, unit = float(n), 0
        while value >= 1024 and unit < len(SIZE_UNITS) - 1:
            value, unit = value / 1024, unit + 1
        if unit == 0:
            return f"{self.number(n)}\u00a0B"
        return f"{format_decimal(value, '#,##0.0', locale=self.locale)}\u00a0{SIZE_UNITS[unit]}"

    def alternatives(self, items: list[str]) -> str:
        """Choices as the language lists them ("A, B oder C")."""
        return format_list(items, style="or", locale=self.locale) if items else ""

    def percent(self, value: float | None) -> str:
        """A share given in percent (87.25) as the language writes it, to one decimal
        ("87,3 %")."""
        if value is None:
            return ""
        return format_percent(round(round(value, 1) / 100, 3), locale=self.locale,
                              decimal_quantization=False)

    def km(self, metres: float | None) -> str:
        """A distance in metres as kilometres to one decimal ("3,2 km")."""
        if metres is None:
            return ""
        return format_unit(round(metres / 1000, 1), "length-kilometer", "short",
                           format="#,##0.0", locale=self.locale)

    def kw(self, value: float | None) -> str:
        """A power in kilowatts ("22 kW", "3,7 kW")."""
        if value is None:
            return ""
        return format_unit(value, "power-kilowatt", "short", format="#,##0.#",
                           locale=self.locale)


def po_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def language(code: str) -> Language:
    """The language of `code`; unknown codes get German (the messages' own language)."""
    return _loaded(code if code in LANGUAGES else DEFAULT)


@cache
def _loaded(code: str) -> Language:
    if code == DEFAULT:
        return Language(code, NullTranslations())
    with po_path(code).open("rb") as po:
        catalog = read_po(po, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they fall back to German
    compiled.seek(0)
    return Language(code, Translations(compiled, domain=DOMAIN))


def chosen(asked: str | None, remembered: str | None) -> tuple[Language, bool]:
    """The language a request gets: `?lang=` when it names one of the portal's languages
    (German for an unknown code), else the remembered one (cookie), else German. The flag
    says whether to remember it."""
    if asked is not None:
        return language(asked), asked in LANGUAGES
    return language(remembered if remembered in LANGUAGES else DEFAULT), False


def load_all() -> None:
    """Read every catalog now: a broken `.po` file stops the server at startup."""
    for code in LANGUAGES:
        language(code)
