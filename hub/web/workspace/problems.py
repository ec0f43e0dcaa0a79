"""The problems of a run as the workspace says them: one sentence per problem in the page's
language, from the problem's code and parameters (`hub.problem_codes`), with numbers and
lists written the language's way — for the validation report (pruefbericht.html) and its
CSV download.

The runs keep their English messages (CLI, logs, JSON APIs); a problem stored before it had a
code, or with a code this module does not know, shows that English message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.intake.runs import Run, problems_csv
from hub.web.portal.i18n import Language
from hub.web.portal.pages import N_

VALUE_LIMIT = 60  # characters of a cell's value quoted in a message

# code (or code/variant) -> the German message; one that counts (`limit`) in the language's
# plural form for the count
TEXTS: dict[str, str | Callable[[Language, int], str]] = {
    "required": N_("Pflichtfeld ist leer."),
    "required.coordinates": N_("Pflichtangabe fehlt: Die Zeile hat keine Koordinaten."),
    "required.geometry": N_("Pflichtangabe fehlt: Die Zeile hat keine Geometrie."),
    "type.integer": N_("„%(value)s“ ist keine ganze Zahl (erwartet wird z. B. 1234 oder "
                       "1.234)."),
    "type.year": N_("„%(value)s“ ist keine Jahreszahl (erwartet wird z. B. 2019)."),
    "type.number": N_("„%(value)s“ ist keine Zahl (erwartet wird z. B. 1234,5 oder "
                      "1.234,5)."),
    "type.number/decimal": N_("„%(value)s“ ist keine Zahl mit dem Dezimalzeichen "
                              "„%(decimal)s“."),
    "type.number/group": N_("„%(value)s“ ist keine Zahl mit dem Dezimalzeichen „%(decimal)s“ "
                            "und dem Tausendertrennzeichen „%(group)s“."),
    "type.number.ambiguous": N_("„%(value)s“ ist mehrdeutig: 1.234 kann 1234 (mit "
                                "Tausenderpunkt) oder 1,234 (mit Dezimalpunkt) heißen, und die "
                                "übrigen Werte der Spalte entscheiden es nicht."),
    "type.number.mixed": N_("„%(value)s“: Die Spalte mischt Dezimalkomma (1,5) und "
                            "Dezimalpunkt (1.5), daher ist unklar, welches gemeint ist."),
    "type.date": N_("„%(value)s“ ist kein Datum (erwartet wird z. B. 01.05.2019 oder "
                    "2019-05-01)."),
    "type.date/example": N_("„%(value)s“ ist kein Datum in der erwarteten Form (z. B. "
                            "%(example)s)."),
    "type.date.ambiguous": N_("„%(value)s“ ist mehrdeutig: Ist 01/02/2019 der 1. Februar oder "
                              "der 2. Januar?"),
    "type.datetime": N_("„%(value)s“ ist keine Zeitangabe (erwartet wird z. B. 01.05.2019 "
                        "14:30 oder 2019-05-01T14:30:00Z)."),
    "type.datetime/example": N_("„%(value)s“ ist keine Zeitangabe in der erwarteten Form "
                                "(z. B. %(example)s)."),
    "type.datetime.ambiguous": N_("„%(value)s“ ist mehrdeutig: Ist 01/02/2019 der 1. Februar "
                                  "oder der 2. Januar?"),
    "type.boolean": N_("„%(value)s“ ist kein Ja/Nein-Wert (erlaubt sind z. B. %(allowed)s)."),
    "type.coordinate": N_("Die Koordinate „%(value)s“ in der Spalte „%(column)s“ ist keine "
                          "Zahl (erwartet wird eine mit dem Dezimalzeichen „%(decimal)s“)."),
    "enum": N_("„%(value)s“ ist keiner der erlaubten Werte: %(allowed)s."),
    "minimum": N_("„%(value)s“ ist kleiner als der kleinste erlaubte Wert %(limit)s."),
    "maximum": N_("„%(value)s“ ist größer als der größte erlaubte Wert %(limit)s."),
    "minLength": lambda lang, n: lang.ngettext("Text ist kürzer als %(limit)s Zeichen.",
                                               "Text ist kürzer als %(limit)s Zeichen.", n),
    "maxLength": lambda lang, n: lang.ngettext("Text ist länger als %(limit)s Zeichen.",
                                               "Text ist länger als %(limit)s Zeichen.", n),
    "pattern": N_("„%(value)s“ hat nicht die erwartete Form (Muster: %(pattern)s)."),
    "unique": N_("Doppelt: Derselbe Wert steht schon in Zeile %(first_row)s."),
    "unique/file": N_("Doppelt: Derselbe Wert steht schon in Zeile %(first_row)s der Datei "
                      "%(first_file)s."),
    "geometry.wkt": N_("„%(value)s“ ist keine gültige WKT-Geometrie."),
    "geometry.wkb": N_("Die Geometrie ist nicht lesbar."),
    "geometry.type": N_("Die Geometrieart %(value)s ist hier nicht erlaubt (erlaubt: "
                        "%(allowed)s)."),
    "crs": N_("Die Koordinaten lassen sich aus dem Koordinatensystem %(crs)s nicht umrechnen: "
              "Stimmt das angegebene Koordinatensystem?"),
    "swapped-axes": N_("Die Koordinaten scheinen vertauscht (Rechts- und Hochwert oder Länge "
                       "und Breite): Vertauscht lägen sie im Landkreis."),
    "extent": N_("Der Ort liegt außerhalb des Landkreises."),
    "row-structure": N_("Die Zeile hat mehr oder weniger Felder als die Kopfzeile."),
}
# a run's error that has a code (hub.problem_codes.FAILURES) -> the German message
FAILURE_TEXTS: dict[str, str] = {
    "no-column": N_("Die Datei %(file)s hat keine Spalte „%(column)s“: Bitte die Zuordnung "
                    "prüfen."),
    "no-column/field": N_("Dem Pflichtfeld „%(field)s“ ist keine Spalte zugeordnet: Die Datei "
                          "%(file)s hat keine Spalte „%(column)s“."),
    "no-rows": N_("%(files)s enthält keine Datenzeilen (nur eine Kopfzeile oder gar nichts)."),
    "filter-keeps-none": N_("Der Filter der Quelle lässt keine Zeile von %(files)s übrig "
                            "(gelesen: %(rows)s)."),
    "rejected": N_("Gefundene Probleme: %(count)s. Es wurde nichts gespeichert, weil die "
                   "Pipeline bei Problemen den ganzen Lauf ablehnt."),
    "no-valid-rows": N_("Keine gültige Zeile (gelesen: %(read)s, mit Problemen: "
                        "%(quarantined)s, übersprungen: %(skipped)s)."),
    "no-geometry": N_("Das Schema braucht eine Lage, aber für %(file)s ist keine Geometrie "
                      "zugeordnet: Bitte die Koordinatenspalten wählen."),
    "unknown-crs": N_("Das Koordinatensystem von %(file)s ist unbekannt: Bitte in der Zuordnung "
                      "angeben (z. B. EPSG:25833)."),
}
# the columns of the problems' CSV (the table's headers on the page)
HEADERS = (N_("Datei"), N_("Zeile"), N_("Spalte"), N_("Wert"), N_("Regel"), N_("Meldung"))


def _variant(code: str, params: dict[str, Any]) -> str:
    """The entry of TEXTS for a code and the parameters it came with."""
    if code == "type.number" and params.get("group"):
        return "type.number/group"
    if code == "type.number" and params.get("decimal"):
        return "type.number/decimal"
    if code in ("type.date", "type.datetime") and params.get("example"):
        return code + "/example"
    if code == "unique" and params.get("first_file"):
        return "unique/file"
    if code == "no-column" and params.get("field"):
        return "no-column/field"
    return code


def message(lang: Language, problem: dict[str, Any]) -> str:
    """One problem (as a run stores it: file, row, column, value, rule, message, code,
    params) as a sentence in `lang`."""
    code = problem.get("code") or ""
    params = problem.get("params") or {}
    text = TEXTS.get(_variant(code, params)) if isinstance(params, dict) else None
    if text is None:
        return str(problem.get("message") or "")
    values = {key: _shown(lang, value, key) for key, value in params.items()}
    value = problem.get("value")
    values["value"] = "" if value is None else _shorten(str(value))
    if callable(text):
        limit = params.get("limit")
        count = limit if isinstance(limit, int) and not isinstance(limit, bool) else 2
        sentence = text(lang, count)
    else:
        sentence = lang.gettext(text)
    try:
        return sentence % values
    except (KeyError, TypeError, ValueError):  # stored without a parameter the text needs
        return str(problem.get("message") or "")


def failure(lang: Language, run: Run) -> str:
    """Why the run failed, in `lang` when its error has a code, else its English message."""
    code = str(run.report.get("error_code") or "")
    params = run.report.get("error_params") or {}
    text = FAILURE_TEXTS.get(_variant(code, params)) if isinstance(params, dict) else None
    if text is None:
        return run.error
    try:
        return lang.gettext(text) % {key: _shown(lang, value, key)
                                     for key, value in params.items()}
    except (KeyError, TypeError, ValueError):
        return run.error


def _shown(lang: Language, value: Any, key: str = "") -> str:
    if isinstance(value, list) and key == "files":
        return ", ".join(str(v) for v in value)
    if isinstance(value, list):
        return lang.alternatives([_shown(lang, v) for v in value])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return lang.number(value)
    return "" if value is None else str(value)


def _shorten(text: str) -> str:
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def csv_of(run: Run, lang: Language) -> bytes:
    """The run's problems as the CSV download: headers and messages in `lang`."""
    return problems_csv(run, [lang.gettext(h) for h in HEADERS],
                        lambda problem: message(lang, problem))
