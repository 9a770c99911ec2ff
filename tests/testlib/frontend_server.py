"""A small stand-in for ComfyUI's HTTP/websocket server that boots the REAL ComfyUI front end.

It serves one `comfyui-frontend-package` wheel's `static/` folder and answers the API the front end
calls while it starts and runs (modelled on ComfyUI 0.3.64's server.py and app/ routes):

- `/object_info` from our real node classes plus the recorded core-node declarations (`object_info.py`);
- `/extensions` listing the pack's `js/` (served under `/extensions/ComfyUI-WanVideo-InfiniteTalk/`);
- `/view` for given files (a real MP4 with sound, the example inputs), with HTTP ranges as browsers ask;
- `/ws` (status on connect; the test pushes scripted JSON or binary progress-text messages);
- `/workflow_templates` from `example_workflows/`; settings, users, userdata, system stats, queue,
  history, embeddings, i18n, models: empty or minimal answers; `POST /prompt` records the prompt.

It runs its own event loop in a thread, so a synchronous Playwright test can drive the page.
"""
from __future__ import annotations

import asyncio
import json
import struct
import threading
import uuid
from pathlib import Path

from aiohttp import WSMsgType, web

from . import REPO_ROOT

PACK_FOLDER = "ComfyUI-WanVideo-InfiniteTalk"
COMFYUI_VERSION = "0.3.64"

# Settings a fresh user would have after closing the first-run dialogs; nothing that changes node drawing.
BASE_SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.InstalledVersion": "1.27.10",
    "Comfy.Validation.Workflows": True,
    "Comfy.Workflow.ShowMissingNodesWarning": True,
    "Comfy.Workflow.ShowMissingModelsWarning": True,
    "Comfy.NodeBadge.NodeSourceBadgeMode": "Show all",
    "Comfy.Queue.ImageFit": "contain",
    "Comfy.Canvas.NavigationMode": "legacy",
}


def _async(handler):
    """aiohttp wants coroutine handlers; the one-line answers above are plain functions."""
    if asyncio.iscoroutinefunction(handler):
        return handler

    async def wrapped(request):
        return handler(request)

    return wrapped


class FrontendServer:
    def __init__(self, static_dir: Path, object_info: dict, view_files: dict[str, Path],
                 model_files: dict[str, list[str]] | None = None, settings: dict | None = None,
                 templates_dir: Path = REPO_ROOT / "example_workflows", js_dir: Path = REPO_ROOT / "js"):
        self.static_dir = Path(static_dir)
        self.object_info = object_info
        self.view_files = {name: Path(p) for name, p in view_files.items()}
        self.model_files = {k: sorted(v) for k, v in (model_files or {}).items() if k != "input"}
        self.settings = dict(BASE_SETTINGS, **(settings or {}))
        self.templates_dir = templates_dir
        self.js_dir = js_dir
        self.prompts: list[dict] = []  # every POST /prompt body, for the tests
        self.requests_missing: list[str] = []  # API paths we answered 404 (to spot what the front end lacks)
        self._sockets: set[web.WebSocketResponse] = set()
        self._loop = None
        self._runner = None
        self._thread = None
        self.url = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True, name="frontend-server")
        self._thread.start()
        if not ready.wait(30) or self.url is None:
            raise RuntimeError("the front-end test server did not start")
        return self.url

    def _serve(self, ready):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def boot():
            self._runner = web.AppRunner(self._app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"

        self._loop.run_until_complete(boot())
        ready.set()
        self._loop.run_forever()

    def stop(self):
        if self._loop is None:
            return

        async def shutdown():
            for ws in list(self._sockets):
                await ws.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop = None

    # ------------------------------------------------------------------ websocket pushes (from the test thread)

    def send_json(self, kind: str, data: dict):
        self._push(json.dumps({"type": kind, "data": data}))

    def send_progress_text(self, node_id: str, text: str):
        """ComfyUI's binary progress-text message: type 3, node id length, node id, text (big-endian)."""
        node = str(node_id).encode()
        self._push(struct.pack(">II", 3, len(node)) + node + text.encode())

    def _push(self, message):
        async def send():
            for ws in list(self._sockets):
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_str(message)
            return len(self._sockets)

        sent = asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)
        if not sent:
            raise RuntimeError("no front end is connected to the websocket")

    # ------------------------------------------------------------------ routes

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        api = web.RouteTableDef()
        api.get("/ws")(self._ws)
        api.get("/object_info")(lambda r: web.json_response(self.object_info))
        api.get("/extensions")(self._extensions)
        api.get("/view")(self._view)
        api.get("/settings")(lambda r: web.json_response(self.settings))
        api.get("/settings/{id}")(lambda r: web.json_response(self.settings.get(r.match_info["id"])))
        api.post("/settings")(self._post_settings)
        api.post("/settings/{id}")(self._post_setting)
        api.get("/users")(lambda r: web.json_response({"storage": "server", "migrated": True}))
        api.get("/userdata")(lambda r: web.json_response([]))
        api.get("/v2/userdata")(lambda r: web.json_response([]))
        api.get("/userdata/{file}")(lambda r: web.Response(status=404))
        api.post("/userdata/{file}")(self._post_userdata)
        api.get("/system_stats")(self._system_stats)
        api.get("/embeddings")(lambda r: web.json_response([]))
        api.get("/i18n")(lambda r: web.json_response({}))
        api.get("/features")(lambda r: web.json_response({"supports_preview_metadata": True,
                                                          "max_upload_size": 100 * 1024 * 1024}))
        # The model library and the missing-models check read these.
        api.get("/experiment/models")(lambda r: web.json_response(
            [{"name": f, "folders": [f"/models/{f}"]} for f in sorted(self.model_files)]))
        api.get("/experiment/models/{folder}")(lambda r: web.json_response(
            [{"name": n, "pathIndex": 0} for n in self.model_files.get(r.match_info["folder"], [])]))
        api.get("/workflow_templates")(self._templates)
        api.get("/workflow_templates/{module}/{file}")(self._template_file)
        api.get("/queue")(lambda r: web.json_response({"queue_running": [], "queue_pending": []}))
        api.get("/history")(lambda r: web.json_response({}))
        api.get("/prompt")(lambda r: web.json_response({"exec_info": {"queue_remaining": 0}}))
        api.post("/prompt")(self._post_prompt)
        api.post("/interrupt")(lambda r: web.json_response({}))
        api.get("/node_replacements")(lambda r: web.json_response({}))
        api.get("/global_subgraphs")(lambda r: web.json_response({}))
        # ComfyUI registers every API route twice: under /api (what the front end uses) and at the root.
        for prefix in ("/api", ""):
            app.router.add_routes([web.route(r.method, prefix + r.path, _async(r.handler)) for r in api])
        app.router.add_get("/internal/folder_paths", _async(lambda r: web.json_response(
            {f: [f"/models/{f}"] for f in sorted(self.model_files)})))
        app.router.add_get("/templates/index.json", _async(lambda r: web.json_response([])))
        app.router.add_get("/", _async(lambda r: web.FileResponse(self.static_dir / "index.html")))
        app.router.add_static(f"/extensions/{PACK_FOLDER}/", self.js_dir)
        app.router.add_route("GET", "/{tail:.*}", self._static)
        return app

    async def _static(self, request):
        rel = request.match_info["tail"]
        path = (self.static_dir / rel).resolve()
        if self.static_dir.resolve() not in path.parents or not path.is_file():
            if rel.startswith("api/"):
                self.requests_missing.append(rel)
                return web.json_response({}, status=404)
            return web.Response(status=404)
        return web.FileResponse(path)

    async def _ws(self, request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps({"type": "status", "data": {
                "status": {"exec_info": {"queue_remaining": 0}}, "sid": sid}}))
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
        return ws

    async def _extensions(self, request):
        core = sorted("/" + p.relative_to(self.static_dir).as_posix() for p in (self.static_dir / "extensions").rglob("*.js"))
        ours = sorted(f"/extensions/{PACK_FOLDER}/{p.name}" for p in self.js_dir.glob("*.js"))
        return web.json_response(core + ours)

    async def _view(self, request):
        name = request.query.get("filename", "")
        path = self.view_files.get(name)
        if path is None:
            return web.Response(status=404)
        return web.FileResponse(path)

    async def _post_settings(self, request):
        self.settings.update(await request.json())
        return web.json_response({})

    async def _post_setting(self, request):
        self.settings[request.match_info["id"]] = await request.json()
        return web.json_response({})

    async def _post_userdata(self, request):
        await request.read()
        name = request.match_info["file"]
        return web.json_response({"path": name, "size": 0, "modified": 0})

    async def _system_stats(self, request):
        return web.json_response({
            "system": {"os": "posix", "python_version": "3", "embedded_python": False,
                       "comfyui_version": COMFYUI_VERSION, "required_frontend_version": "1.27.10",
                       "pytorch_version": "2", "argv": ["main.py"], "ram_total": 8 << 30, "ram_free": 4 << 30},
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0,
                         "torch_vram_total": 0, "torch_vram_free": 0}],
        })

    async def _templates(self, request):
        names = sorted(p.stem for p in self.templates_dir.glob("*.json"))
        return web.json_response({PACK_FOLDER: names} if names else {})

    async def _template_file(self, request):
        if request.match_info["module"] != PACK_FOLDER:
            return web.Response(status=404)
        path = self.templates_dir / request.match_info["file"]
        if path.parent != self.templates_dir or not path.is_file():
            return web.Response(status=404)
        return web.FileResponse(path)

    async def _post_prompt(self, request):
        body = await request.json()
        self.prompts.append(body)
        return web.json_response({"prompt_id": uuid.uuid4().hex, "number": len(self.prompts), "node_errors": {}})
