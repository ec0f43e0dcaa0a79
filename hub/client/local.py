"""A hub on this machine: its project folder (or store), read and changed through the same
core functions as the CLI and the web server.

Who is asking decides what is seen and what may be changed, by `hub.access`: the operator
(the default) sees and may do everything, as the `hub` commands do; `as_user="m.schulze"` (or
the user's API `token`) gives exactly what that user sees through the web APIs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.client.base import GEOMETRY_COLUMN, BBox, DatasetInfo, Hub, VersionInfo, without_bbox
from hub.client.errors import (
    ClientError,
    InvalidFilter,
    InvalidQuery,
    InvalidRecord,
    NotAHub,
    NotAllowed,
    NotFound,
    VersionRemoved,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from hub.access import Viewer
    from hub.client import maps
    from hub.store.versions import Dataset, Version
    from hub.web.services import Services


def locate(path: Path) -> tuple[Path, Path]:
    """The project root and the store of a path naming either (raises `NotAHub`)."""
    path = path.expanduser().resolve()
    if (path / "hub.sqlite").is_file():
        return path.parent, path
    if (path / "store" / "hub.sqlite").is_file():
        return path, path / "store"
    raise NotAHub(f"{path}: not a hub — expected a project folder with store/hub.sqlite or a "
                  "store folder with hub.sqlite (run `hub ingest` there first)")


class LocalHub(Hub):
    """A local store, seen as the operator or as a given user (`as_user`, `token`)."""

    def __init__(self, path: Path, as_user: str | None = None, token: str | None = None):
        super().__init__()
        from hub.access import OPERATOR, DataAccess
        from hub.config import load_settings
        from hub.errors import HubError
        from hub.web.services import Services

        root, store = locate(Path(path))
        self.location = str(root)
        try:
            self.settings = load_settings(root, store)
            self._services: Services = Services.open(self.settings)
        except HubError as exc:
            raise NotAHub(f"{root}: the hub cannot be opened: {exc}") from None
        self.store = self._services.catalog.store
        self.viewer: Viewer = self._viewer(as_user, token) if (as_user or token) else OPERATOR
        self._access = DataAccess(lambda: (self._services.catalog, self._services.vocab))
        self._layers: Any = None

    def _viewer(self, as_user: str | None, token: str | None) -> Viewer:
        from hub.accounts import AccountError

        accounts = self._services.accounts
        if token:
            user = accounts.authenticate(token)
            if user is None:
                raise NotAllowed("the token is unknown, expired or revoked")
            if as_user and as_user != user.name:
                raise NotAllowed(f"the token is {user.name!r}'s, not {as_user!r}'s")
            return user.viewer
        try:
            return accounts.user(str(as_user)).viewer
        except AccountError as exc:
            raise NotFound(str(exc)) from None

    # -- datasets -----------------------------------------------------------------------------

    def _visible(self) -> list[tuple[Dataset, Version]]:
        found = []
        for dataset in self.store.datasets():
            current = self.store.current(dataset.name)
            if current is not None and self._access.may_see(self.viewer, dataset):
                found.append((dataset, current))
        return found

    def _dataset(self, name: str) -> Dataset:
        from hub.errors import StoreError

        try:
            dataset = self.store.dataset(name)
        except StoreError:
            dataset = None
        if dataset is None or not self._access.may_see(self.viewer, dataset):
            raise NotFound(f"no dataset named {name!r}")  # unknown and hidden alike
        return dataset

    def _version(self, name: str, number: int | None) -> Version:
        from hub.errors import StoreError

        self._dataset(name)
        if number is None:
            version = self.store.current(name)
            if version is None:
                raise NotFound(f"dataset {name!r} has no version yet")
        else:
            try:
                version = self.store.version(name, int(number))
            except (StoreError, OverflowError):
                raise NotFound(f"dataset {name!r} has no version {number}") from None
        if version.purged or not version.exists():
            raise VersionRemoved(f"version {version.version} of {name!r} was removed by the "
                                 "retention policy (see history())")
        if version.broken:
            raise ClientError(f"version {version.version} of {name!r} is damaged and not "
                              f"served: {version.broken} (see `hub check`)")
        return version

    def datasets(self) -> list[DatasetInfo]:
        out = []
        for dataset, version in self._visible():
            record = self._record_admin(dataset.name)
            out.append(DatasetInfo(
                name=dataset.name, title=record.title if record else dataset.title,
                organization=record.publisher if record else dataset.organization,
                attribution=(record.attribution if record else "") or dataset.attribution,
                version=version.version, rows=version.rows, bbox=version.bbox,
                geometry_types=list(version.geometry_types), modified=version.finished))
        return out

    def _record_admin(self, name: str) -> Any:
        from hub.access import ADMIN
        from hub.catalog.model import ALL_STATES

        return self._services.catalog.get(name, ADMIN, ALL_STATES)  # metadata of held data

    def history(self, name: str) -> list[VersionInfo]:
        current = self._dataset(name).current_version
        return [VersionInfo(v.version, v.rows, v.finished, v.checksum, v.version == current,
                            removed=bool(v.purged), broken=v.broken or "")
                for v in self.store.versions(name)]

    def _source(self, name: str, version: int | None) -> str | pa.NativeFile:
        return self._version(name, version).source()  # S3: read by HTTP ranges

    def _location(self, name: str, version: int | None) -> str:
        return self._version(name, version).location()

    def _prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        self.store.files.prepare(con)  # S3: httpfs and a secret from the environment

    def _selected(self, name: str, version: int | None, bbox: BBox | None,
                  cql: str | None) -> pa.Table:
        """The OGC API's own selection (`Layer.select`) over the version in memory."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from hub.api.ogc import crs
        from hub.api.ogc.cql2 import parse
        from hub.api.ogc.layer import LayerCache
        from hub.api.ogc.params import BadParameter, make_area

        v = self._version(name, version)
        if self._layers is None:
            self._layers = LayerCache()
        layer = self._layers.layer(v)
        try:
            area = make_area(list(bbox), crs.DEFAULT, "bbox") if bbox is not None else None
            tree = parse(cql, layer.meta.queryables,
                         GEOMETRY_COLUMN if layer.geometry is not None else None) \
                if cql is not None else None
            rows = layer.select(area, None, (), tree)
        except BadParameter as exc:
            raise InvalidFilter(str(exc)) from None
        table = layer.properties
        if layer.geometry is not None:
            table = table.append_column(GEOMETRY_COLUMN, layer.geometry)
        if rows is not None:
            table = table.take(pa.array(rows))
        return without_bbox(table.replace_schema_metadata(pq.read_schema(v.source()).metadata))

    # -- catalog ------------------------------------------------------------------------------

    def _call(self) -> Any:
        from hub.api.ckan.core import Call
        from hub.api.ckan.packages import Site

        s = self._services
        return Call(s.catalog, s.accounts, s.uploads,
                    Site(self.settings.base_url, s.vocab, s.district), self.viewer)

    def _action(self, name: str, data: dict[str, Any]) -> Any:
        """A CKAN action, as the CKAN API runs it (hub.api.ckan), its errors as ours."""
        import orjson

        from hub.api.ckan import get, search  # noqa: F401 - the actions register on import
        from hub.api.ckan.core import ACTIONS, ActionError, NotAuthorized
        from hub.api.ckan.core import NotFound as ActionNotFound

        try:
            result = ACTIONS[name][0](self._call(), data)
        except ActionNotFound as exc:
            raise NotFound(exc.message) from None
        except NotAuthorized as exc:
            raise NotAllowed(exc.message) from None
        except ActionError as exc:
            raise InvalidQuery(exc.message) from None
        return orjson.loads(orjson.dumps(result))  # fragments rendered by search, as JSON

    def record(self, name: str) -> dict[str, Any]:
        return self._action("package_show", {"id": name})

    def search(self, q: str = "", rows: int = 20, **params: Any) -> dict[str, Any]:
        return self._action("package_search", {"q": q, "rows": rows, **params})

    def register(self, record: dict[str, Any]) -> dict[str, Any]:
        from hub.catalog.editing import Editing

        with _core_errors():
            created = Editing(self._services.catalog, self._services.vocab,
                              self.viewer).create(dict(record), "hub.open")
        return self.record(created.name)

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        from hub.api.ckan.get import show_states
        from hub.catalog.editing import Editing

        old = self._services.catalog.get(name, self.viewer, show_states(self._call()))
        if old is None:
            raise NotFound(f"no record named {name!r}")  # hidden and unknown alike
        with _core_errors():
            changed = Editing(self._services.catalog, self._services.vocab,
                              self.viewer).patch(old, dict(changes), None, f"record {name}")
        return self.record(changed.name)

    def run(self, pipeline: str, force: bool = False) -> Any:
        from hub.access import owner_id, require_owner
        from hub.ingest.pipeline import load_pipeline
        from hub.ingest.run import ingest

        path = Path(pipeline)
        if not path.suffix:
            path = self.settings.pipelines_dir / f"{pipeline}.yaml"
        if not path.is_file():
            raise NotFound(f"no pipeline {pipeline!r} ({path})")
        with _core_errors():
            spec = load_pipeline(path, self.settings.schemas_dir)
            owner = owner_id(spec.organization, self._services.vocab)
            require_owner(self.viewer, spec.dataset, owner, "run its pipeline")
            return ingest(spec, self.store, self.settings, who=self.viewer.user or "python",
                          force=force)

    # -- maps ---------------------------------------------------------------------------------

    def _assets(self) -> maps.Assets:
        from hub.client import maps

        return maps.embedded()


@contextlib.contextmanager
def _core_errors() -> Iterator[None]:
    """The core's errors (hub.errors) as the client's."""
    from hub.catalog.checklist import NotReady
    from hub.catalog.index import NameTaken
    from hub.catalog.model import RecordInvalid
    from hub.errors import Forbidden, HubError, PipelineError

    try:
        yield
    except ClientError:
        raise
    except Forbidden as exc:
        raise NotAllowed(str(exc)) from None
    except (RecordInvalid, NameTaken, NotReady, PipelineError) as exc:
        raise InvalidRecord(str(exc)) from None
    except HubError as exc:
        raise ClientError(str(exc)) from None
