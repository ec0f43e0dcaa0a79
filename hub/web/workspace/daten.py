"""/arbeitsbereich/datensaetze/{name}/daten: bring a dataset's data in — upload files (or name
a URL, WFS or OGC API endpoint), look at the first rows and a map, adjust the proposed
mapping, save it as a pipeline definition, run it; /…/pruefbericht: the last run's validation
report and its quarantined rows; /…/pipeline.yaml: the saved definition as a file.

Thin routes over `hub.intake.workbench` (who may: `hub.access`, asked there). Uploads are read
by their own streaming reader: the body is counted as it comes (refused past the upload
limit), file parts spool to temporary files, and the CSRF token is checked before anything
is kept.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from hub.catalog.uploads import Received
from hub.errors import Forbidden, HubError
from hub.ingest.sources import human_size
from hub.intake import mapping as mapping_
from hub.intake.files import TooLarge, UploadRefused
from hub.intake.preview import CRS_CHOICES
from hub.intake.workbench import Workbench
from hub.problem_codes import failing
from hub.web.forms import counted_body
from hub.web.session import CSRF_FIELD, Session, check_csrf
from hub.web.workspace import problems as problems_
from hub.web.workspace.desk import ROOT, Desk, see_other
from hub.web.workspace.problem import Problem, not_editable

FIELDS_ROOM = 64 << 10  # bytes of an upload's body besides its files


def _workbench(desk: Desk) -> Workbench:
    hub = desk.hub
    return Workbench(hub.settings, hub.catalog, hub.uploads)


def _remote(params: Any) -> mapping_.Remote | None:
    kind = params.get("art", "")
    if kind not in mapping_.REMOTE_KINDS or not params.get("url", "").strip():
        return None
    return mapping_.Remote(kind, params["url"].strip(), params.get("ebene", "").strip(),
                           params.get("format", "").strip())


async def _upload(request: Request, session: Session, limit: int,
                  max_files: int) -> list[UploadFile]:
    """The files of a multipart upload, its CSRF token checked (`Forbidden`); the body is
    refused as soon as it passes `limit` (`TooLarge`)."""
    stream = counted_body(request, limit + FIELDS_ROOM, failing(TooLarge(
        f"the upload is larger than the upload limit of {human_size(limit)} "
        "(HUB_MAX_UPLOAD_BYTES)"), "upload.too-large", limit=limit))
    parser = MultiPartParser(request.headers, stream, max_files=max_files + 1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadRefused(f"the upload could not be read ({exc.message})") from None
    try:
        check_csrf(request, session, str(form.get(CSRF_FIELD) or ""))
    except Forbidden:
        await form.close()
        raise
    return [v for k, v in form.multi_items() if k == "dateien" and isinstance(v, UploadFile)
            and (v.filename or v.size)]


def _keep(bench: Workbench, name: str, uploads: list[UploadFile]) -> int:
    """Stream each spooled file into staging, check and keep them all (or none)."""
    received: list[tuple[Received, str]] = []
    intake = bench.intake
    try:
        for upload in uploads:
            received.append(intake.receive(upload.file, upload.filename or ""))
    except HubError:
        for item, _ in received:
            intake.uploads.discard(item)
        raise
    return len(intake.keep(name, received))


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    base = ROOT + "/datensaetze/{name}"

    async def page(request: Request, session: Session, name: str, status: int = 200,
                   error: HubError | None = None,
                   form: dict[str, str] | None = None) -> Response:
        """The page; `error`: what was refused, said in the page's language if it has a
        code (`problems.refusal`)."""
        bench = _workbench(desk)
        context = await run_in_threadpool(_context, bench, session, name,
                                          request.query_params, form)
        lang = desk.render.language(request)
        look_error = context.pop("look_error")
        return desk.page(request, session, "workspace/daten.html", status,
                         error=problems_.refusal(lang, error) if error else "",
                         look_error=problems_.refusal(lang, look_error) if look_error else "",
                         **context)

    @router.get(base + "/daten", response_class=HTMLResponse)
    async def data(request: Request, name: str) -> Response:
        session = await desk.session(request)
        return await page(request, session, name)

    @router.post(base + "/daten/dateien", response_class=HTMLResponse)
    async def upload(request: Request, name: str) -> Response:
        session = await desk.session(request)
        bench = _workbench(desk)
        await run_in_threadpool(_dataset, bench, session, name)  # before the body is read
        files: list[UploadFile] = []
        try:
            files = await _upload(request, session, bench.uploads.limit,
                                  bench.intake.limits.max_files)
            await run_in_threadpool(_keep, bench, name, files)
        except UploadRefused as exc:
            return await page(request, session, name, exc.http_status, exc)
        finally:
            for item in files:
                await item.close()
        return see_other(f"{ROOT}/datensaetze/{name}/daten#vorschau")

    @router.post(base + "/daten/pipeline", response_class=HTMLResponse)
    async def save(request: Request, name: str) -> Response:
        session = await desk.session(request)
        fields = await desk.form(request, session, max_bytes=65536, max_fields=200)
        bench = _workbench(desk)
        try:
            await run_in_threadpool(_save, bench, session, name, fields)
        except HubError as exc:
            if isinstance(exc, Forbidden | Problem):
                raise
            return await page(request, session, name, getattr(exc, "http_status", 400),
                              exc, form=fields)
        return see_other(f"{ROOT}/datensaetze/{name}/daten#pipeline")

    @router.post(base + "/daten/lauf", response_class=HTMLResponse)
    async def run(request: Request, name: str) -> Response:
        session = await desk.session(request)
        await desk.form(request, session)
        bench = _workbench(desk)
        try:
            await run_in_threadpool(_start, bench, session, name)
        except HubError as exc:
            if isinstance(exc, Forbidden | Problem):
                raise
            return await page(request, session, name, 409, exc)
        return see_other(f"{ROOT}/datensaetze/{name}/daten#lauf")

    @router.get(base + "/daten/lauf.json")
    async def run_state(request: Request, name: str) -> Response:
        session = await desk.session(request)
        bench = _workbench(desk)
        last = await run_in_threadpool(_last_run, bench, session, name)
        body: dict[str, Any] = {"state": "none"}
        if last is not None:
            body = {"id": last.id, "state": last.status, "progress": last.job.progress,
                    "message": last.job.message, "version": last.version}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @router.get(base + "/pruefbericht", response_class=HTMLResponse)
    async def report(request: Request, name: str) -> Response:
        session = await desk.session(request)
        bench = _workbench(desk)
        record, last = await run_in_threadpool(_report, bench, session, name)
        has_quarantine = bool(last and last.version is not None
                              and last.report.get("rows_quarantined"))
        return desk.page(request, session, "workspace/pruefbericht.html", record=record,
                         run=last, has_quarantine=has_quarantine, wording=problems_)

    @router.get(base + "/pruefbericht/quarantaene.csv")
    async def quarantined(request: Request, name: str) -> Response:
        session = await desk.session(request)
        bench = _workbench(desk)
        _, last = await run_in_threadpool(_report, bench, session, name)
        rows = await run_in_threadpool(problems_.quarantine_csv, bench.store, last,
                                       desk.render.language(request)) if last else None
        if rows is None:
            raise Problem(404, "no_quarantine", "the last run quarantined no rows")
        return StreamingResponse(rows, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{name}-quarantaene.csv"',
            "Cache-Control": "no-store"})

    @router.get(base + "/pruefbericht/probleme.csv")
    async def problems(request: Request, name: str) -> Response:
        session = await desk.session(request)
        bench = _workbench(desk)
        _, last = await run_in_threadpool(_report, bench, session, name)
        if last is None:
            raise Problem(404, "no_run", "this dataset has no run yet")
        table = problems_.csv_of(last, desk.render.language(request))
        return Response(table, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{name}-probleme.csv"',
            "Cache-Control": "no-store"})

    @router.get(base + "/pipeline.yaml")
    async def export(request: Request, name: str) -> Response:
        session = await desk.session(request)
        bench = _workbench(desk)
        revision = request.query_params.get("revision", "")
        text = await run_in_threadpool(_export, bench, session, name, revision)
        return Response(text, media_type="application/yaml; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{name}.yaml"',
            "Cache-Control": "no-store"})

    return router


def _dataset(bench: Workbench, session: Session, name: str) -> Any:
    try:
        return bench.dataset(session.user.viewer, name)
    except HubError as exc:
        if getattr(exc, "http_status", 0) == 404:
            raise not_editable() from None
        raise


def _context(bench: Workbench, session: Session, name: str, params: Any,
             form: dict[str, str] | None) -> dict[str, Any]:
    record = _dataset(bench, session, name)
    files = bench.intake.files(name)
    saved = bench.definitions.latest(name)
    pipeline = bench.pipeline(name) if saved else None
    chosen, remote = mapping_.of_pipeline(pipeline) if pipeline else (None, None)
    remote = _remote(form or params) or remote
    sheet = (form or params).get("blatt", "").strip() or (
        str(chosen.options.get("sheet", "")) if chosen else "")
    if form is not None or "schema" in params:  # what the user chose last wins
        chosen = None
    schemas = bench.schemas()
    look, look_error = None, None
    try:
        look = bench.look(files, remote, sheet)
    except HubError as exc:
        look_error = exc  # said in the page's language by `page`
    sheets = look.sheets if look else bench.sheets(files)
    sheet = look.sheet if look else sheet or (sheets[0] if sheets else "")
    schema_name = ((form or {}).get("schema") or params.get("schema")
                   or (chosen.schema if chosen else None))
    if look is not None and schema_name not in schemas:
        from hub.intake.preview import best_schema

        schema_name = best_schema(schemas, look)
    schema = schemas.get(schema_name or "")
    proposal: dict[str, str] = {}
    misfits: dict[str, str] = {}
    if look is not None and schema is not None:
        proposal = chosen.columns if chosen else look.proposal(schema)
        if form is not None:
            proposal = {f.name: form.get(f"map.{f.name}", "") for f in schema.columns}
        misfits = look.misfits(schema, {k: v for k, v in proposal.items() if v})
    geometry = _geometry_choice(look, chosen, form)
    return {"record": record, "files": files, "remote": remote, "look": look,
            "look_error": look_error, "schemas": schemas, "schema": schema,
            "schema_name": schema_name or "", "proposal": proposal, "misfits": misfits,
            "geometry": geometry, "crs_choices": CRS_CHOICES, "saved": saved,
            "history": bench.definitions.history(name)[:10] if saved else [],
            "on_error": (form or {}).get("on_error") or (chosen.on_error if chosen
                                                          else "quarantine"),
            "run": bench.last_run(name), "limit": bench.uploads.limit,
            "sheets": sheets, "sheet": sheet,
            "pipeline_file": bench.definitions.file_of(name)}


def _geometry_choice(look: Any, chosen: mapping_.Mapping | None,
                     form: dict[str, str] | None) -> dict[str, str]:
    if form is not None:
        return {k: form.get(k, "") for k in ("geometry", "lon", "lat", "wkt", "crs")}
    if chosen is not None:
        return {"geometry": chosen.geometry, "lon": chosen.lon, "lat": chosen.lat,
                "wkt": chosen.wkt, "crs": chosen.crs}
    if look is None:
        return {"geometry": "none", "lon": "", "lat": "", "wkt": "", "crs": ""}
    g = look.geometry
    return {"geometry": g.kind, "lon": g.lon, "lat": g.lat, "wkt": g.wkt,
            "crs": g.crs or ""}


def _save(bench: Workbench, session: Session, name: str, fields: dict[str, str]) -> None:
    record = _dataset(bench, session, name)
    schemas = bench.schemas()
    schema = schemas.get(fields.get("schema", ""))
    if schema is None:
        raise mapping_.MappingError("schema", "choose one of the table schemas "
                                    f"({', '.join(schemas)})", "mapping.schema",
                                    schemas=list(schemas))
    chosen = mapping_.from_form(fields, [f.name for f in schema.columns])
    remote = _remote(fields)
    if sheet := chosen.options.get("sheet"):  # one of the workbook's (else SourceError)
        bench.look(bench.intake.files(name), remote, sheet)
    bench.save(session.user.viewer, record, chosen, remote)


def _start(bench: Workbench, session: Session, name: str) -> Any:
    record = _dataset(bench, session, name)
    return bench.start_run(session.user.viewer, record)


def _last_run(bench: Workbench, session: Session, name: str) -> Any:
    _dataset(bench, session, name)
    return bench.last_run(name)


def _report(bench: Workbench, session: Session, name: str) -> Any:
    record = _dataset(bench, session, name)
    return record, bench.last_run(name)


def _export(bench: Workbench, session: Session, name: str, revision: str) -> str:
    _dataset(bench, session, name)
    history = bench.definitions.history(name)
    found = next((r for r in history if str(r.revision) == revision), None) if revision \
        else (history[0] if history else None)
    if found is None:
        raise Problem(404, "no_pipeline", "no pipeline (revision) saved for this dataset")
    return found.text
