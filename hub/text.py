"""Text as people type it: the one folding of names and words that every search uses.

`fold` makes "Mühlberg/Elbe", "Muehlberg/Elbe" and (with `umlauts="a"`) "Muhlberg/Elbe" alike,
and Lower Sorbian names findable without their marks ("Chóśebuz" → "chosebuz",
"Łuków" → "lukow"). The catalog's full-text index (`hub.catalog.index`), the vocabularies
(`hub.catalog.vocab`) and the place search (`hub.places`) fold with it; a word is found by
either spelling of its umlauts because the index keeps both (see `hub.catalog.index`).
"""

from __future__ import annotations

import re
import unicodedata

_UMLAUTS = {"ae": str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"}),
            "a": str.maketrans({"ä": "a", "ö": "o", "ü": "u"})}
# Latin letters whose mark is part of the letter (Unicode does not decompose them)
_WHOLE_LETTERS = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "ħ": "h", "ı": "i", "ŀ": "l",
                                "æ": "ae", "œ": "oe", "þ": "th"})


def fold(text: str, umlauts: str = "ae") -> str:
    """Lower case without diacritics, for matching what people type.

    German umlauts are written out (ä → ae, or ä → a with `umlauts="a"`), ß → ss; every other
    mark is dropped — the Lower Sorbian ó ś ć ź ž č š ě ŕ ń become o s c z z c s e r n, and ł
    becomes l. Leading and trailing space is removed."""
    text = unicodedata.normalize("NFC", text.strip()).casefold()  # casefold: ß → ss
    text = unicodedata.normalize("NFKD", text.translate(_UMLAUTS[umlauts]))
    return "".join(c for c in text if not unicodedata.combining(c)).translate(_WHOLE_LETTERS)


def slug(text: str, limit: int = 80) -> str:
    """A URL name from a title: folded, runs of other characters as one hyphen
    ("Herzberg (Elster)" → "herzberg-elster", "Mühlberg/Elbe" → "muehlberg-elbe")."""
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:limit].rstrip("-")
