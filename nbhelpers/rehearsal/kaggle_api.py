"""A local fake of the Kaggle API (the JSON-over-POST methods the client uses for kernels and datasets),
bound to 127.0.0.1 only. The unmodified client reaches it with KAGGLE_API_ENVIRONMENT=LOCALHOST plus
HTTP_PROXY pointing here (see shared notes). Behaviour is scripted per test through attributes."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

OutputFn = Callable[[str, int, dict], tuple[dict[str, bytes], str]]


class FakeKaggle:
    """State and scripts of the fake server; ``calls`` records (method, body) of every API call."""

    def __init__(self, username: str, key: str):
        self.username, self.key = username, key
        self.calls: list[tuple[str, dict]] = []
        self.requests: list[str] = []                    # "VERB path" of every HTTP request, answered or not
        self.kernels: dict[str, list[dict]] = {}          # "owner/slug" -> versions (SaveKernel bodies)
        self.datasets: dict[str, list[list[str]]] = {}    # "owner/slug" -> versions (file names)
        self.blobs: dict[str, tuple[str, bytes]] = {}     # token -> (name, content)
        self.fail: dict[str, int] = {}                    # method -> how many more calls answer HTTP 500
        self.push_error: str | None = None
        self.allow_self_source = True
        self.status_script = ["QUEUED", "RUNNING", "COMPLETE"]
        self.failure_message = ""
        self.max_page_size = 1000                          # the server caps pageSize (forces paging in tests)
        self.output_fn: OutputFn = lambda ref, version, body: ({}, "")
        self._status_calls: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeKaggle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self, home: Path) -> dict[str, str]:
        """The environment of a process whose unmodified client reaches this server: this process's, without any
        real Kaggle credentials or proxies, with ``home`` (holding ``.kaggle/kaggle.json``) as HOME."""
        from ..paths import PROJECT_ROOT

        env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and "proxy" not in k.lower()}
        proxy = self.base
        return {**env, "HOME": str(home), "KAGGLE_CONFIG_DIR": str(home / ".kaggle"), "PYTHONPATH": str(PROJECT_ROOT),
                "TQDM_DISABLE": "1", "KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": proxy, "http_proxy": proxy,
                "NO_PROXY": "", "no_proxy": ""}

    def calls_of(self, method: str) -> list[dict]:
        return [body for name, body in self.calls if name == method]

    # ---- API methods: body in, (HTTP status, JSON) out
    def SaveKernel(self, body: dict) -> tuple[int, dict]:
        if self.push_error:
            return 200, {"error": self.push_error}
        ref = body["slug"]
        invalid = {"invalidDatasetSources": [d for d in body.get("datasetDataSources", []) if d not in self.datasets],
                   "invalidKernelSources": [k for k in body.get("kernelDataSources", []) if not self._kernel_ok(k, ref)],
                   "invalidModelSources": list(body.get("modelDataSources", []))}
        invalid = {k: v for k, v in invalid.items() if v}
        if invalid:
            return 200, {"ref": ref, "url": f"{self.base}/code/{ref}", **invalid}
        versions = self.kernels.setdefault(ref, [])
        versions.append(body)
        return 200, {"ref": ref, "url": f"{self.base}/code/{ref}", "versionNumber": len(versions)}

    def _kernel_ok(self, source: str, pushing: str) -> bool:
        parts = source.split("/")
        ref = "/".join(parts[:2])
        if ref not in self.kernels:
            return False
        if ref == pushing and not self.allow_self_source:
            return False
        return len(parts) == 2 or 1 <= int(parts[2]) <= len(self.kernels[ref])

    def _latest(self, body: dict) -> tuple[str, int] | None:
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        return (ref, len(self.kernels[ref])) if self.kernels.get(ref) else None

    def GetKernelSessionStatus(self, body: dict) -> tuple[int, dict]:
        latest = self._latest(body)
        if latest is None:
            return 404, {"code": 404, "message": "Kernel not found"}
        n = self._status_calls.get(latest, 0)
        self._status_calls[latest] = n + 1
        status = self.status_script[min(n, len(self.status_script) - 1)]
        return 200, {"status": status, **({"failureMessage": self.failure_message} if status == "ERROR" else {})}

    def ListKernelSessionOutput(self, body: dict) -> tuple[int, dict]:
        latest = self._latest(body)
        if latest is None:
            return 404, {"code": 404, "message": "Kernel not found"}
        ref, version = latest
        files, log = self.output_fn(ref, version, self.kernels[ref][-1])
        names = sorted(files)
        start = int(body.get("pageToken") or 0)
        size = min(int(body.get("pageSize") or 20), self.max_page_size)
        page = names[start:start + size]
        out = {"files": [{"fileName": n, "url": f"{self.base}/files/{ref}/{version}/{n}"} for n in page], "log": log}
        if start + size < len(names):
            out["nextPageToken"] = str(start + size)
        return 200, out

    def file_content(self, path: str) -> bytes | None:
        owner, slug, version, name = path.split("/", 3)
        ref = f"{owner}/{slug}"
        if not self.kernels.get(ref) or not version.isdigit():
            return None
        files, _ = self.output_fn(ref, int(version), self.kernels[ref][int(version) - 1])
        return files.get(name)

    def GetDatasetStatus(self, body: dict) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return 404, {"code": 404, "message": f"Dataset {ref} not found"}
        return 200, {"status": "READY"}

    def StartBlobUpload(self, body: dict) -> tuple[int, dict]:
        token = f"blob{len(self.blobs) + 1}"
        self.blobs[token] = (body.get("name", ""), b"")
        return 200, {"token": token, "createUrl": f"{self.base}/upload/{token}"}

    def CreateDataset(self, body: dict) -> tuple[int, dict]:
        ref = f"{body['ownerSlug']}/{body['slug']}"
        self.datasets[ref] = [[self.blobs[f["token"]][0] for f in body.get("files", [])]]
        return 200, {"ref": ref, "url": f"{self.base}/datasets/{ref}", "status": "ok"}

    def CreateDatasetVersion(self, body: dict) -> tuple[int, dict]:
        ref = f"{body['ownerSlug']}/{body['datasetSlug']}"
        if ref not in self.datasets:
            return 404, {"code": 404, "message": f"Dataset {ref} not found"}
        self.datasets[ref].append([self.blobs[f["token"]][0] for f in body.get("body", {}).get("files", [])])
        return 200, {"ref": ref, "url": f"{self.base}/datasets/{ref}", "status": "ok"}


def _handler(fake: FakeKaggle) -> type[BaseHTTPRequestHandler]:
    expected_auth = "Basic " + base64.b64encode(f"{fake.username}:{fake.key}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, code: int, payload: dict | bytes) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes)
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            fake.requests.append(f"POST {path}")
            body = self._body()
            if self.headers.get("Authorization") != expected_auth:
                return self._send(401, {"code": 401, "message": "Unauthenticated"})
            parts = path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["api", "v1"] or not hasattr(fake, parts[3]):
                return self._send(404, {"code": 404, "message": f"no such method {path}"})
            method = parts[3]
            request = json.loads(body or b"{}")
            with fake._lock:
                fake.calls.append((method, request))
                if fake.fail.get(method, 0) > 0:
                    fake.fail[method] -= 1
                    return self._send(500, {"code": 500, "message": f"fake outage in {method}"})
                code, payload = getattr(fake, method)(request)
            self._send(code, payload)

        def do_PUT(self) -> None:
            path = urlsplit(self.path).path
            fake.requests.append(f"PUT {path}")
            data = self._body()
            token = path.rsplit("/", 1)[-1]
            with fake._lock:
                if not path.startswith("/upload/") or token not in fake.blobs:
                    return self._send(404, {"code": 404, "message": "unknown upload"})
                fake.blobs[token] = (fake.blobs[token][0], data)
            self._send(200, {})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            fake.requests.append(f"GET {path}")
            with fake._lock:
                content = fake.file_content(path[len("/files/"):]) if path.startswith("/files/") else None
                if content is not None and fake.fail.get("download", 0) > 0:
                    fake.fail["download"] -= 1
                    return self._send(503, {"code": 503, "message": "fake storage outage"})
            if content is None:
                return self._send(404, {"code": 404, "message": "no such file"})
            self._send(200, content)

    return Handler
