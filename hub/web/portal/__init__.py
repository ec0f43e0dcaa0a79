"""The citizen portal at `/`: catalog pages (start, search with facets, dataset, organisations),
"about the data", imprint, privacy, accessibility statement and a Leichte Sprache page, in
German, Lower Sorbian and English.

Modules: `pages` (what each page shows, from the core), `routes` (URLs, language, rendering),
`i18n` (languages from the gettext catalogs in `locale/`), `preview` (first rows of a version),
`settings` (`catalog/portal.yaml`). Templates in `templates/`, CSS and JS in `hub/web/static/`.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
