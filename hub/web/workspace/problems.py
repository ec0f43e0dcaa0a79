"""The problems of a run as the workspace says them: one sentence per problem in the page's
language, from the problem's code and parameters (`hub.problem_codes`), with numbers and
lists written the language's way — for the validation report (pruefbericht.html) and its
CSV download.

The runs keep their English messages (CLI, logs, JSON APIs); a problem stored before it had a
code, or with a code this module does not know, shows that English message. The same for a
refused upload or a file the preview cannot read (`refusal`), and for the quarantined rows'
download (`quarantine_csv`: their problems from the `_codes` kept beside the English
`_errors`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from hub.intake.runs import Run, problems_csv, quarantined_csv
from hub.store.versions import Store
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
# the parameters that are sizes in bytes (runs stored before said them as English text)
SIZES = {"read.too-large": ("size", "limit"), "upload.too-large": ("limit",),
         "fetch.too-large": ("limit",)}

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
    # a remote source that cannot be fetched
    "fetch.resolve": N_("Der Rechnername %(host)s ist nicht bekannt (kein DNS-Eintrag): Bitte die "
                        "Adresse prüfen."),
    "fetch.private": N_("%(host)s ist keine öffentliche Adresse (%(address)s). Der Datenhub holt "
                        "Quellen nur aus dem Internet; einen Rechner im internen Netz kann die "
                        "Verwaltung des Datenhubs freigeben (HUB_FETCH_ALLOW)."),
    "fetch.timeout": N_("%(url)s hat nicht innerhalb von %(seconds)s Sekunden geantwortet."),
    "fetch.connect": N_("Zu %(url)s lässt sich keine Verbindung aufbauen."),
    "fetch.status": N_("Der Server von %(url)s hat mit dem Fehler HTTP %(status)s geantwortet."),
    "fetch.too-large": N_("Die Daten unter %(url)s sind größer als die erlaubten %(limit)s."),
    "fetch.stalled": N_("Das Herunterladen von %(url)s stockte länger als %(seconds)s "
                        "Sekunden."),
    "fetch.broken": N_("Das Herunterladen von %(url)s brach ab."),
    "fetch.html": N_("Unter %(url)s liefert der Server eine Web-Seite statt Daten: Ist die "
                     "Adresse eine Startseite oder eine Anmeldung?"),
    "fetch.ckan": N_("Unter %(url)s antwortet keine CKAN-API (die Antwort ist kein JSON)."),
    "fetch.ckan-resource": N_("Die CKAN-API %(url)s kennt die Ressource „%(resource)s“ nicht, "
                              "oder die Ressource hat keine Adresse."),
    "fetch.geojson": N_("Seite %(page)s von %(url)s ist kein GeoJSON."),
    "fetch.features": N_("Seite %(page)s von %(url)s enthält keine Liste „features“."),
    "fetch.returned": N_("Seite %(page)s von %(url)s nennt %(returned)s Objekte "
                         "(numberReturned), enthält aber %(found)s."),
    "fetch.changed": N_("Seite %(page)s von %(url)s nennt %(matched)s Objekte insgesamt, eine "
                        "frühere Seite %(expected)s: Die Daten haben sich während des Abrufs "
                        "geändert. Bitte den Lauf wiederholen."),
    "fetch.order": N_("Das Objekt „%(id)s“ kam auf Seite %(page)s von %(url)s, aber schon auf "
                      "Seite %(first_page)s: Der Server ordnet die Seiten nicht stabil, so "
                      "können Objekte fehlen. Bitte in der Pipeline „sort_by“ auf eine eindeutige "
                      "Spalte der Quelle setzen."),
    "fetch.pages": N_("%(source)s hat mehr als %(limit)s Seiten."),
    "fetch.incomplete": N_("%(source)s kündigte %(expected)s Objekte an (numberMatched), es kamen "
                           "aber %(received)s auf %(pages)s Seiten. Unvollständige Daten werden "
                           "nicht gespeichert."),
    # a file that cannot be read at all
    "read.missing": N_("Die Datei %(file)s wurde nicht gefunden."),
    "read.too-large": N_("Die Datei %(file)s ist mit %(size)s größer als die erlaubten "
                         "%(limit)s."),
    "read.empty": N_("Die Datei %(file)s ist leer (0 Byte)."),
    "read.blank": N_("Die Datei %(file)s enthält nur leere Zeilen."),
    "read.format": N_("Am Namen der Datei %(file)s ist nicht zu erkennen, welches Format sie "
                      "hat (gelesen werden: %(formats)s)."),
    "read.unsupported": N_("Die Datei %(file)s hat das Format %(format)s, das der Hub nicht "
                           "liest."),
    "read.options": N_("Die Pipeline gibt für die Datei %(file)s unbekannte Optionen an "
                       "(%(options)s); erlaubt sind: %(allowed)s."),
    "read.options/none": N_("Die Pipeline gibt für die Datei %(file)s Optionen an "
                            "(%(options)s), aber dieses Format nimmt keine."),
    "read.no-data": N_("%(file)s enthält weder ein Shapefile (.shp) noch eine "
                       "GTFS-Haltestellendatei (stops.txt)."),
    "read.zip": N_("Die Datei %(file)s ist kein gültiges ZIP-Archiv (abgeschnitten oder "
                   "beschädigt)."),
    "read.no-stops": N_("Das GTFS-Archiv %(file)s enthält keine stops.txt."),
    "read.utf16": N_("Die Datei %(file)s ist als UTF-16 gespeichert: Bitte als UTF-8 speichern "
                     "(Excel: „CSV UTF-8“)."),
    "read.binary": N_("Die Datei %(file)s ist keine Textdatei (ein Null-Byte an Stelle "
                      "%(offset)s): Bitte eine CSV-Datei hochladen."),
    "read.encoding": N_("Die Datei %(file)s enthält in Zeile %(row)s, Spalte „%(column)s“ "
                        "Zeichen, die in der Kodierung %(encoding)s ungültig sind: Bitte die "
                        "Kodierung der Datei prüfen."),
    "read.encoding/utf-8": N_("Die Datei %(file)s enthält in Zeile %(row)s, Spalte "
                              "„%(column)s“ Zeichen, die kein gültiges UTF-8 sind: "
                              "Wahrscheinlich ist sie in Windows-1252 gespeichert; bitte als "
                              "„CSV UTF-8“ speichern."),
    "read.encoding-unknown": N_("Die Kodierung „%(encoding)s“ der Datei %(file)s wird nicht "
                                "unterstützt (möglich: utf-8, cp1252, iso-8859-15)."),
    "read.fields": N_("In der Datei %(file)s hat Zeile %(row)s eine andere Anzahl Felder als "
                      "die Kopfzeile (%(found)s statt %(expected)s): Fehlt dort ein "
                      "Trennzeichen, oder ist eines zu viel?"),
    "read.fields/no-row": N_("In der Datei %(file)s hat eine Zeile eine andere Anzahl Felder "
                             "als die Kopfzeile (%(found)s statt %(expected)s)."),
    "read.quote": N_("In der Datei %(file)s öffnet Zeile %(row)s ein Anführungszeichen, das "
                     "nicht wieder geschlossen wird: Bitte es dort entfernen oder schließen."),
    "read.quote/no-row": N_("In der Datei %(file)s wird ein Anführungszeichen geöffnet und "
                            "nicht wieder geschlossen: Bitte es entfernen oder schließen."),
    "read.csv": N_("Die Datei %(file)s lässt sich nach Zeile %(row)s nicht als CSV lesen: Ist "
                   "dort ein Anführungszeichen nicht geschlossen?"),
    "read.csv/no-row": N_("Die Datei %(file)s lässt sich nicht als CSV lesen: Sie braucht "
                          "eine Kopfzeile, und jedes Anführungszeichen muss geschlossen sein."),
    "read.header-row": N_("Die Kopfzeile %(header_row)s liegt nicht in der Datei %(file)s "
                          "(Zeilen 1 bis %(last)s)."),
    "read.xlsx": N_("Die Datei %(file)s lässt sich nicht als Excel-Arbeitsmappe öffnen "
                    "(beschädigt oder abgeschnitten?)."),
    "read.no-sheet": N_("Die Arbeitsmappe %(file)s hat kein Blatt „%(sheet)s“; ihre Blätter: "
                        "%(sheets)s."),
    "read.empty-sheet": N_("Das Blatt „%(sheet)s“ der Arbeitsmappe %(file)s ist leer."),
    "read.no-layer": N_("Die Datei %(file)s hat keine Ebene „%(layer)s“; ihre Ebenen: "
                        "%(layers)s."),
    "read.layers": N_("Die Datei %(file)s enthält mehrere Ebenen (%(layers)s), gelesen wird "
                      "aber nur eine: Bitte je Datei eine Ebene hochladen (ein Shapefile je "
                      "ZIP-Archiv)."),
    "read.geodata": N_("Die Datei %(file)s lässt sich nicht als %(format)s lesen (beschädigt "
                       "oder ein anderes Format?)."),
    "read.feature": N_("Die Datei %(file)s lässt sich nach Objekt %(row)s nicht weiterlesen "
                       "(beschädigt oder abgeschnitten?)."),
    "read.parquet": N_("Die Datei %(file)s ist keine lesbare Parquet-Datei."),
    "read.parquet-encoding": N_("Die Geometrie der GeoParquet-Datei %(file)s ist als "
                                "%(encoding)s gespeichert; gelesen wird nur WKB."),
    # an upload refused (nothing kept)
    "upload.none": N_("Es wurde keine Datei gesendet: Bitte eine oder mehrere Dateien wählen."),
    "upload.too-many": N_("Es wurden %(count)s Dateien gesendet; höchstens %(limit)s gehen auf "
                          "einmal."),
    "upload.same-name": N_("Zwei Dateien haben denselben Namen: Bitte eine umbenennen."),
    "upload.no-name": N_("Es wurde eine Datei ohne Namen gesendet: Bitte eine Datei wählen."),
    "upload.folder": N_("„%(file)s“: Ein Dateiname darf keinen Ordner nennen (kein / oder \\, "
                        "kein ..): Bitte die Datei selbst senden."),
    "upload.hidden": N_("„%(file)s“: Der Dateiname enthält Steuerzeichen oder beginnt mit "
                        "einem Punkt."),
    "upload.kind": N_("„%(file)s“: Der Hub liest nur diese Arten von Dateien: %(formats)s."),
    "upload.too-large": N_("%(file)s ist größer als die Obergrenze für hochgeladene Dateien "
                           "(%(limit)s)."),
    "upload.too-large/body": N_("Das Hochgeladene ist größer als die Obergrenze für "
                                "hochgeladene Dateien (%(limit)s)."),
    "upload.empty": N_("Die Datei %(file)s ist leer (0 Byte)."),
    "upload.binary": N_("Der Inhalt von %(file)s ist binär, kein Text: Eine solche Datei muss "
                        "%(format)s-Text sein."),
    "upload.geojson": N_("%(file)s ist kein GeoJSON (die Datei beginnt nicht mit einem "
                         "JSON-Objekt)."),
    "upload.gpkg": N_("%(file)s ist kein GeoPackage (eine SQLite-Datei mit der "
                      "GeoPackage-Kennung)."),
    "upload.xlsx": N_("%(file)s ist keine Excel-Arbeitsmappe (.xlsx): Bitte das Blatt als "
                      "Excel-Arbeitsmappe oder als CSV speichern."),
    "upload.not-zip": N_("Der Inhalt von %(file)s passt nicht zum Namen: Die Datei ist kein "
                         "vollständiges ZIP-Archiv, wie es .xlsx- und .zip-Dateien sind "
                         "(abgeschnitten oder beschädigt?)."),
    "upload.zip": N_("%(file)s ist ein beschädigtes oder nicht unterstütztes ZIP-Archiv."),
    "upload.zip-entries": N_("Das ZIP-Archiv %(file)s hat %(count)s Einträge, mehr als "
                             "%(limit)s."),
    "upload.zip-path": N_("Das ZIP-Archiv %(file)s enthält einen unsicheren Pfad "
                          "„%(member)s“."),
    "upload.zip-bomb": N_("„%(member)s“ in %(file)s entpackt sich auf mehr als das "
                          "%(limit)s-Fache seiner Größe (eine ZIP-Bombe?) und wird abgelehnt."),
    "upload.zip-unpacked": N_("Das ZIP-Archiv %(file)s entpackt sich auf mehr als %(limit)s "
                              "und wird abgelehnt."),
    "upload.no-shapefile": N_("Das ZIP-Archiv %(file)s enthält kein Shapefile (.shp)."),
    "upload.no-dbf": N_("Dem Shapefile im ZIP-Archiv %(file)s fehlt seine .dbf-Datei."),
    # a mapping that cannot be saved
    "mapping.schema": N_("Bitte das Tabellenschema des Datensatzes wählen."),
    "mapping.schema/offered": N_("Bitte eines der Tabellenschemas wählen: %(schemas)s."),
    "mapping.choice": N_("„%(value)s“ ist für %(field)s nicht wählbar (möglich: "
                         "%(allowed)s)."),
    "mapping.coordinates": N_("Bitte die Spalten beider Koordinaten wählen (Länge und "
                              "Breite)."),
    "mapping.wkt": N_("Bitte die Spalte mit der WKT-Geometrie wählen."),
    "mapping.crs": N_("Bitte das Koordinatenreferenzsystem angeben, z. B. EPSG:25833."),
    "mapping.source": N_("Bitte zuerst eine Datei hochladen oder eine URL, einen WFS oder "
                         "einen Endpunkt einer OGC API angeben."),
    # a run the guard refused: its reasons, each a sentence of its own
    "guard": N_("Die Prüfung vor dem Speichern hat den Lauf abgelehnt. %(reasons)s Bitte "
                "Datei und Zuordnung prüfen; ist das Ergebnis so gewollt, kann die "
                "Administration die Grenze in der Pipeline anheben."),
    "guard.quarantined": N_("%(quarantined)s von %(read)s gelesenen Zeilen haben Probleme "
                            "(%(share)s, erlaubt sind höchstens %(max_share)s)."),
    "guard.quarantined/outside": N_("%(quarantined)s von %(read)s gelesenen Zeilen haben "
                                    "Probleme (%(share)s, erlaubt sind höchstens "
                                    "%(max_share)s), %(outside)s davon liegen außerhalb des "
                                    "Landkreises."),
    "guard.outside": N_("%(outside)s von %(read)s gelesenen Zeilen liegen außerhalb des "
                        "Landkreises (%(share)s, erlaubt sind höchstens %(max_share)s)."),
    "guard.shrink": N_("Die neue Version hätte nur %(rows)s Zeilen statt %(current)s, "
                       "%(share)s weniger (erlaubt sind höchstens %(max_share)s)."),
}
# parameters of failures that list names: said as a list, not as alternatives
LISTS = ("files", "sheets", "layers", "formats", "options", "allowed", "schemas")
# the readers' format names as people know them
FORMATS = {"csv": "CSV", "xlsx": "XLSX", "geojson": "GeoJSON", "shapefile": "Shapefile",
           "gpkg": "GeoPackage", "flatgeobuf": "FlatGeobuf", "geoparquet": "GeoParquet",
           "gtfs": "GTFS"}
# the columns a run adds to a quarantined row, as the quarantine's download names them
ADDED = {"_file": N_("_datei"), "_row": N_("_zeile"), "_errors": N_("_fehler"),
         "_raw": N_("_rohtext"), "_geometry": N_("_geometrie")}
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
    if code in ("read.fields", "read.quote", "read.csv") and params.get("row") is None:
        return code + "/no-row"
    if code == "read.encoding" and params.get("encoding") == "utf-8":
        return "read.encoding/utf-8"
    if code == "read.options" and not params.get("allowed"):
        return "read.options/none"
    if code == "upload.too-large" and not params.get("file"):
        return "upload.too-large/body"
    if code == "mapping.schema" and params.get("schemas"):
        return "mapping.schema/offered"
    if code == "guard.quarantined" and params.get("outside"):
        return "guard.quarantined/outside"
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
    return _failure(lang, str(run.report.get("error_code") or ""),
                    run.report.get("error_params") or {}, run.error)


def refusal(lang: Language, exc: BaseException) -> str:
    """An error (a refused upload, a file the preview cannot read) in `lang` when it has a
    code (`hub.problem_codes.failing`), else its English message."""
    return _failure(lang, str(getattr(exc, "failure_code", "") or ""),
                    getattr(exc, "failure_params", {}), str(exc))


def _failure(lang: Language, code: str, params: Any, english: str) -> str:
    text = FAILURE_TEXTS.get(_variant(code, params)) if isinstance(params, dict) else None
    if text is None:
        return english
    try:
        return lang.gettext(text) % {
            key: lang.size(value) if key in SIZES.get(code, ()) and type(value) is int
            else _shown(lang, value, key, of_failure=True) for key, value in params.items()}
    except (KeyError, TypeError, ValueError):
        return english


def _shown(lang: Language, value: Any, key: str = "", of_failure: bool = False) -> str:
    if of_failure and key == "reasons" and isinstance(value, list):  # the guard's
        said = [_failure(lang, str(reason.get("code")), reason.get("params"), "")
                if isinstance(reason, dict) else "" for reason in value]
        if not all(said):
            raise ValueError("a reason without its sentence")  # then the English message
        return " ".join(said)
    if of_failure and key in ("share", "max_share") and isinstance(value, int | float):
        return lang.percent(value)
    if of_failure and isinstance(value, list) and key in LISTS:
        return ", ".join(str(v) for v in value) if value else "–"
    if of_failure and key == "format" and isinstance(value, str):
        return FORMATS.get(value, value)
    if of_failure and key in ("row", "header_row", "last", "offset", "page", "first_page",
                              "status") and isinstance(value, int):
        return str(value)  # a place, not an amount: no thousands separator
    if isinstance(value, list):
        return lang.alternatives([_shown(lang, v) for v in value])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return lang.number(value)
    return "" if value is None else str(value)


def _shorten(text: str) -> str:
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def quarantine_csv(store: Store, run: Run, lang: Language) -> Iterator[bytes] | None:
    """The run's quarantined rows as the download (`hub.intake.runs.quarantined_csv`): the
    columns the run added named, and each row's problems said, in `lang`."""
    return quarantined_csv(store, run, {k: lang.gettext(v) for k, v in ADDED.items()},
                           lambda codes, english: row_problems(lang, codes, english))


def row_problems(lang: Language, codes: str | None, english: str | None) -> str:
    """A quarantined row's problems (its `_codes`) in `lang`, each after its column; the
    stored English `_errors` for a row without codes (an older quarantine) or with one this
    module cannot say."""
    try:
        found = json.loads(codes) if codes else None
    except ValueError:
        found = None
    if not isinstance(found, list) or not found:
        return english or ""
    said = []
    for problem in found:
        text = message(lang, {**problem, "message": ""}) if isinstance(problem, dict) else ""
        if not text:
            return english or ""
        said.append(f"{problem['column']}: {text}" if problem.get("column") else text)
    return "; ".join(said)


def csv_of(run: Run, lang: Language) -> bytes:
    """The run's problems as the CSV download: headers and messages in `lang`."""
    return problems_csv(run, [lang.gettext(h) for h in HEADERS],
                        lambda problem: message(lang, problem))
