"""The flow builder: a local web page that edits a flow as a form on top of the YAML language.

``revops flows builder [--port 8765] [--dir FOLDER]`` serves ``builder.html`` on 127.0.0.1. The page
writes the YAML itself from the form; the server only parses, validates and saves YAML text:

* ``GET  /api/meta``            agents and their actions, custom step types, trigger types, the folder
* ``GET  /api/flows``           the flow files in the folder (file, flow_id, version, valid)
* ``GET  /api/flows/{file}``    one file: its YAML text and the same content as form values
* ``POST /api/validate``        the request body is flow YAML; the answer lists every problem with line
                                and column, from the same validator the loader uses (``parse_flow``)
* ``PUT  /api/flows/{file}``    ``{"yaml": ..., "overwrite": false}``: saves valid YAML into the folder

Saving rules: the file name is a plain ``name.yaml`` inside the folder (no path, no traversal); the YAML
must validate; its ``flow_id`` must not belong to another file of the folder; an existing file is
replaced only when the new ``version`` is higher than the saved one, or with ``overwrite: true``. The
file is written atomically. Saving from the form writes canonical YAML: comments are not kept.
Requests with an ``Origin`` other than the page's own are refused (another site cannot save flows).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from revops_pipelines.errors import RevOpsError
from revops_pipelines.flows.loader import FlowValidationError, parse_flow

PAGE = Path(__file__).with_name("builder.html")
FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,80}\.ya?ml$")
TRIGGERS = ("manual", "schedule", "sensor", "event")


class BuilderError(RevOpsError):
    def __init__(self, status: int, message: str, problems: list[dict] | None = None):
        self.status = status
        self.problems = problems or []
        super().__init__(message)


def flow_file(folder: Path, name: str) -> Path:
    """``folder/name`` for a plain ``*.yaml`` name; anything else (paths, ``..``, hidden files) is refused."""
    if not FILE_NAME.match(name):
        raise BuilderError(
            400,
            f"file name {name!r} refused: use lower-case letters, digits, '_' or '-' ending in .yaml, "
            "without a folder",
        )
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise BuilderError(400, f"file name {name!r} refused: outside the flows folder")
    return path


def validate_text(text: str, name: str = "<flow>") -> dict[str, Any]:
    """``{"ok", "problems": [{line, column, message}], "flow_id", "version"}`` for flow YAML text."""
    try:
        spec = parse_flow(text, name)
    except FlowValidationError as err:
        problems = [{"line": p.line, "column": p.column, "message": p.message} for p in err.problems]
        return {"ok": False, "problems": problems, "flow_id": None, "version": None}
    return {"ok": True, "problems": [], "flow_id": spec.flow_id, "version": spec.version}


def _yaml_text(value: Any) -> str:
    if value in (None, {}, []):
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


def form_values(data: dict[str, Any]) -> dict[str, Any]:
    """A parsed flow as the page's form holds it: free-form parts (step parameters, entity params)
    become YAML text, everything else stays as values."""
    form = {k: v for k, v in data.items() if k not in ("steps", "entities")}
    entities = data.get("entities")
    if isinstance(entities, dict):
        form["entities"] = {**entities, "params": json.dumps(entities.get("params", []))}
    steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    form["steps"] = [
        {**s, "parameters": _yaml_text(s.get("parameters"))} if isinstance(s, dict) else {"id": str(s)}
        for s in steps
    ]
    return form


class FlowFolder:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and FILE_NAME.match(p.name))

    def listing(self) -> list[dict[str, Any]]:
        out = []
        for path in self.files():
            result = validate_text(path.read_text(encoding="utf-8"), path.name)
            out.append(
                {
                    "file": path.name,
                    "flow_id": result["flow_id"] or _field(path, "flow_id"),
                    "version": result["version"] or _field(path, "version"),
                    "valid": result["ok"],
                }
            )
        return out

    def read(self, name: str) -> dict[str, Any]:
        path = flow_file(self.folder, name)
        if not path.exists():
            raise BuilderError(404, f"no flow file {name!r} in {self.folder}")
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise BuilderError(
                422, f"{name} is not readable YAML ({err}); fix it in an editor first"
            ) from None
        if not isinstance(data, dict):
            raise BuilderError(422, f"{name} is not a flow (a mapping with flow_id, steps, ...)")
        return {"file": name, "yaml": text, "form": form_values(data)}

    def save(self, name: str, text: str, overwrite: bool = False) -> dict[str, Any]:
        path = flow_file(self.folder, name)
        result = validate_text(text, name)
        if not result["ok"]:
            raise BuilderError(
                422, f"not saved: {name} has {len(result['problems'])} problem(s)", result["problems"]
            )
        for other in self.files():
            if other.name != path.name and _field(other, "flow_id") == result["flow_id"]:
                raise BuilderError(
                    409, f"not saved: flow_id {result['flow_id']!r} already belongs to {other.name}"
                )
        if path.exists() and not overwrite:
            saved = _field(path, "version")
            if not isinstance(saved, int) or result["version"] <= saved:
                raise BuilderError(
                    409,
                    f"not saved: {name} exists with version {saved}; raise version above it "
                    "or save with overwrite",
                )
        if not self.folder.is_dir():
            raise BuilderError(404, f"flows folder {self.folder} does not exist")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return {"saved": path.name, "flow_id": result["flow_id"], "version": result["version"]}


def _field(path: Path, key: str) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def meta(folder: Path) -> dict[str, Any]:
    from revops_pipelines.agents.registry import AGENTS
    from revops_pipelines.flows.plugins import STEP_TYPES

    return {
        "folder": str(folder),
        "agents": {name: list(agent.action_names()) for name, agent in sorted(AGENTS.items())},
        "step_types": sorted(STEP_TYPES),
        "triggers": list(TRIGGERS),
    }


def create_app(folder: Path):
    """The Starlette app serving the page and its API for one flows folder."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    flows = FlowFolder(folder)

    def guarded(handler):
        async def endpoint(request: Request):
            origin = request.headers.get("origin")
            if (
                request.method != "GET"
                and origin
                and origin != f"{request.url.scheme}://{request.url.netloc}"
            ):
                return JSONResponse({"error": f"cross-origin request from {origin} refused"}, status_code=403)
            try:
                return await handler(request)
            except BuilderError as err:
                return JSONResponse({"error": str(err), "problems": err.problems}, status_code=err.status)

        return endpoint

    async def page(request: Request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def get_meta(request: Request):
        return JSONResponse(meta(flows.folder))

    async def list_flows(request: Request):
        return JSONResponse({"folder": str(flows.folder), "flows": flows.listing()})

    async def read_flow(request: Request):
        return JSONResponse(flows.read(request.path_params["name"]))

    async def validate(request: Request):
        text = (await request.body()).decode("utf-8", errors="replace")
        return JSONResponse(validate_text(text, request.query_params.get("file") or "<flow>"))

    async def save_flow(request: Request):
        try:
            body = await request.json()
        except ValueError:
            raise BuilderError(400, 'body must be JSON: {"yaml": "...", "overwrite": false}') from None
        if not isinstance(body, dict) or not isinstance(body.get("yaml"), str):
            raise BuilderError(400, 'body must be JSON: {"yaml": "...", "overwrite": false}')
        return JSONResponse(
            flows.save(request.path_params["name"], body["yaml"], bool(body.get("overwrite")))
        )

    return Starlette(
        routes=[
            Route("/", guarded(page)),
            Route("/api/meta", guarded(get_meta)),
            Route("/api/flows", guarded(list_flows)),
            Route("/api/flows/{name}", guarded(read_flow), methods=["GET"]),
            Route("/api/flows/{name}", guarded(save_flow), methods=["PUT"]),
            Route("/api/validate", guarded(validate), methods=["POST"]),
        ]
    )


def serve(folder: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    uvicorn.run(create_app(folder), host=host, port=port, log_level="warning")
