"""HTML pages of the OGC API (German, no JavaScript, no external assets).

Every page is the same small template: a breadcrumb, a heading, the content, and the links of
the JSON document as a list, so the HTML and JSON views always offer the same ways on.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

CSS = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;
line-height:1.45;color:#1b1b1b}a{color:#0b4ea2}table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #8a8a8a;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5}nav ol{list-style:none;padding:0;margin:0 0 1rem}nav li{display:inline}
nav li+li::before{content:" › "}.paging a{margin-right:1rem}code{background:#f3f3f3}
"""


def page(title: str, crumbs: list[tuple[str, str]], body: str,
         links: list[dict[str, Any]] | None = None) -> str:
    """A complete page; `crumbs` are (label, href) from the landing page down."""
    trail = "".join(
        f'<li><a href="{escape(href)}">{escape(label)}</a></li>' if href
        else f'<li aria-current="page">{escape(label)}</li>' for label, href in crumbs)
    link_list = ""
    if links:
        items = "".join(
            f'<li><a href="{escape(link["href"])}" type="{escape(link.get("type", ""))}">'
            f'{escape(link.get("title") or link["rel"])}</a> '
            f'<small>({escape(link["rel"])}, {escape(link.get("type", ""))})</small></li>'
            for link in links)
        link_list = f"<h2>Verweise</h2><ul>{items}</ul>"
    return (f'<!doctype html><html lang="de"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f'<nav aria-label="Navigationspfad"><ol>{trail}</ol></nav>'
            f"<main><h1>{escape(title)}</h1>{body}{link_list}</main></body></html>")


def text(value: Any) -> str:
    """A property value as German text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float):
        return f"{value:,.6g}".replace(",", "\u202f").replace(".", ",")
    if isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y %H:%M:%S %Z").strip()
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def table(head: list[str], rows: list[list[str]], caption: str = "",
          row_headers: bool = False) -> str:
    """A table of already escaped cells; the first cell of a row is a header if asked."""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    thead = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = ""
    for row in rows:
        cells = [f'<th scope="row">{c}</th>' if row_headers and i == 0 else f"<td>{c}</td>"
                 for i, c in enumerate(row)]
        body += f"<tr>{''.join(cells)}</tr>"
    return f"<table>{cap}<thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>"


def facts(pairs: list[tuple[str, str]]) -> str:
    """A two-column table of label and (escaped) value."""
    rows = "".join(f'<tr><th scope="row">{escape(k)}</th><td>{v}</td></tr>'
                   for k, v in pairs if v)
    return f"<table><tbody>{rows}</tbody></table>"


def number(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def geometry_summary(geometry: dict[str, Any] | None) -> str:
    """A short German description of a GeoJSON geometry (points show their coordinates)."""
    if geometry is None:
        return "keine"
    kind = geometry.get("type", "")
    names = {"Point": "Punkt", "MultiPoint": "Mehrfachpunkt", "LineString": "Linie",
             "MultiLineString": "Mehrfachlinie", "Polygon": "Fläche",
             "MultiPolygon": "Mehrfachfläche", "GeometryCollection": "Geometriesammlung"}
    if kind == "Point":
        x, y = geometry["coordinates"][:2]
        return f"Punkt ({x}, {y})"
    return names.get(kind, kind)
