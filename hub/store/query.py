"""SQL over the store: a DuckDB connection with one view per dataset's current version.

    con = connect(Store("store"))
    con.sql("SELECT gemeinde, sum(haushalte) FROM breitband GROUP BY ALL")

The connection is in-memory and read-only towards the store: it reads the immutable Parquet
files of the versions that were current when it was opened (call `refresh` to follow new ones).
A dataset whose current version is marked broken (`hub check`) gets no view.
DuckDB's spatial extension is loaded from the `duckdb-extension-spatial` package, never
downloaded; versions on S3 are read through httpfs (see hub.storage.s3).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from hub.store.versions import Store


def spatial_extension() -> Path:
    """The spatial extension binary shipped by the PyPI package for this DuckDB version."""
    import duckdb_extension_spatial

    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if not path.exists():
        raise RuntimeError(f"duckdb-extension-spatial does not match duckdb {duckdb.__version__}"
                           f" (looked for {path})")
    return path


def connect(store: Store, spatial: bool = True,
            datasets: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per dataset (current version), optionally spatial."""
    con = new_connection(spatial)
    store.files.prepare(con)  # S3: httpfs and a secret from the environment
    refresh(con, store, datasets)
    return con


def new_connection(spatial: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never downloads extensions, with spatial loaded if asked."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    if spatial:
        con.execute(f"INSTALL '{spatial_extension()}'")
        con.execute("LOAD spatial")
    return con


def refresh(con: duckdb.DuckDBPyConnection, store: Store,
            datasets: list[str] | None = None) -> None:
    """Point every view at its dataset's current version."""
    for d in store.datasets():
        if datasets is not None and d.name not in datasets:
            continue
        version = store.current(d.name)
        if version is None or version.broken:
            con.execute(f'DROP VIEW IF EXISTS "{d.name}"')
            continue
        path = version.location().replace("'", "''")
        con.execute(f'CREATE OR REPLACE VIEW "{d.name}" AS SELECT * FROM read_parquet(\'{path}\')')
