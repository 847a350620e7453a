"""A local stand-in for the Hugging Face hub's upload API, bound to 127.0.0.1 only: the unmodified
``huggingface_hub`` client reaches it through ``HF_ENDPOINT=http://127.0.0.1:<port>`` and runs its real upload
path (create the repo, ask which files go to LFS, the LFS batch API and a PUT per large file, then one NDJSON commit).
It keeps what a repo received (``repos[repo_id]``: path -> bytes, plus the commits) and the ``Authorization`` header
of every request, so tests can check what arrived and with which token."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .hubcache import LFS_SUFFIXES


class FakeHub:
    """The server and what it received; ``token`` is the only write token it accepts (others get HTTP 401)."""

    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, dict[str, bytes]] = {}       # repo id -> files
        self.private: dict[str, bool] = {}
        self.commits: dict[str, list[dict[str, Any]]] = {}  # repo id -> commit headers (summary, ...)
        self.blobs: dict[str, bytes] = {}                   # LFS oid (sha256) -> content
        self.requests: list[tuple[str, str, str]] = []      # (verb, path, Authorization header)
        self.card_metadata: dict[str, Any] = {}             # the README's YAML block, as the last validation read it
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    # --------------------------------------------------------------------------------------------- the API
    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        repo = f"{body.get('organization')}/{body['name']}"
        with self._lock:
            exists = repo in self.repos
            self.repos.setdefault(repo, {})
            self.commits.setdefault(repo, [])
            self.private.setdefault(repo, bool(body.get("private")))
        return (409 if exists else 200), {"url": f"{self.endpoint}/{repo}", "name": repo}

    def preupload(self, repo: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if repo not in self.repos:
            return 404, {"error": f"Repository Not Found: {repo}"}
        return 200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                               for f in body["files"]]}

    def validate_yaml(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The card's YAML metadata must parse into a mapping (the hub checks more: licence ids, tags, ...)."""
        import yaml

        text = body.get("content", "")
        head = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
        try:
            meta = yaml.safe_load(head)
        except yaml.YAMLError as err:
            return 400, {"errors": [{"message": f"YAML does not parse: {err}"}]}
        if not isinstance(meta, dict):
            return 400, {"errors": [{"message": "the metadata block is not a mapping"}]}
        self.card_metadata = meta
        return 200, {"errors": [], "warnings": []}

    def lfs_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"transfer": "basic", "objects": [
            {"oid": o["oid"], "size": o["size"], "authenticated": True,
             "actions": {"upload": {"href": f"{self.endpoint}/lfs-upload/{o['oid']}"}}} for o in body["objects"]]}

    def lfs_put(self, oid: str, data: bytes) -> tuple[int, dict[str, Any]]:
        if hashlib.sha256(data).hexdigest() != oid:
            return 400, {"error": "content does not match its oid"}
        with self._lock:
            self.blobs[oid] = data
        return 200, {}

    def commit(self, repo: str, lines: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        if repo not in self.repos:
            return 404, {"error": f"Repository Not Found: {repo}"}
        files: dict[str, bytes] = {}
        header: dict[str, Any] = {}
        for line in lines:
            value = line["value"]
            if line["key"] == "header":
                header = value
            elif line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.blobs:
                    return 422, {"error": f"LFS object {value['oid']} was never uploaded"}
                files[value["path"]] = self.blobs[value["oid"]]
        oid = hashlib.sha1(json.dumps(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items()))
                           .encode()).hexdigest()
        with self._lock:
            self.repos[repo].update(files)
            self.commits[repo].append(header)
        return 200, {"commitUrl": f"{self.endpoint}/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: tests read hub.requests instead
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, verb: str) -> None:
            path = self.path.split("?")[0]
            auth = self.headers.get("Authorization", "")
            hub.requests.append((verb, path, auth))
            body = self._body()
            if not path.startswith("/lfs-upload/") and auth != f"Bearer {hub.token}":
                self._reply(401, {"error": "Invalid credentials in Authorization header"})
                return
            parts = path.strip("/").split("/")
            if verb == "POST" and path == "/api/validate-yaml":
                self._reply(*hub.validate_yaml(json.loads(body)))
            elif verb == "POST" and path == "/api/repos/create":
                self._reply(*hub.create(json.loads(body)))
            elif verb == "POST" and parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
                self._reply(*hub.preupload("/".join(parts[2:4]), json.loads(body)))
            elif verb == "POST" and parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
                self._reply(*hub.commit("/".join(parts[2:4]), [json.loads(x) for x in body.splitlines() if x.strip()]))
            elif verb == "POST" and path.endswith(".git/info/lfs/objects/batch"):
                self._reply(*hub.lfs_batch(json.loads(body)))
            elif verb == "PUT" and path.startswith("/lfs-upload/"):
                self._reply(*hub.lfs_put(parts[-1], body))
            else:
                self._reply(404, {"error": f"not served by the fake hub: {verb} {path}"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._route("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._route("PUT")

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

    return Handler
