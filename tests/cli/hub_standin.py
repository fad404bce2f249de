"""A local stand-in of the Hugging Face Hub's HTTP API: what `huggingface_hub.snapshot_download` calls.

Serves repositories held in memory on 127.0.0.1 (never another address): repo info, the recursive file
tree, and file downloads with the headers huggingface_hub reads (X-Repo-Commit, ETag, Content-Length) and
HTTP Range requests, so an interrupted download resumes. `HF_ENDPOINT=hub.url` points huggingface_hub at it.
`fail_after` cuts a download off after that many bytes (once per file), to test resuming.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    kind: str  # "model" | "dataset"
    repo_id: str
    files: dict[str, bytes]
    sha: str = ""

    def __post_init__(self):
        digest = hashlib.sha1(json.dumps(sorted((k, v.hex()) for k, v in self.files.items())).encode()).hexdigest()
        self.sha = self.sha or digest

    @staticmethod
    def blob_id(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Hub:
    repos: list[Repo]
    fail_after: int | None = None  # bytes served before a download is cut off (first GET of each file)
    requests: list[str] = field(default_factory=list)
    _cut: set = field(default_factory=set)

    def find(self, kind: str, repo_id: str) -> Repo | None:
        return next((r for r in self.repos if r.kind == kind and r.repo_id == repo_id), None)

    def __enter__(self) -> "Hub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _json(self, value):
                data = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _missing(self, why: str):
                data = why.encode()
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound" if "repo" in why else "EntryNotFound")
                self.send_header("X-Error-Message", why)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, body: bool):
                path = unquote(urlsplit(self.path).path)
                rng = self.headers.get("Range")
                hub.requests.append(f"{self.command} {path}" + (f" Range: {rng}" if rng else ""))
                parts = path.strip("/").split("/")
                if parts[0] == "api":  # /api/{models|datasets}/{org}/{name}/{revision|tree}/{rev}
                    kind = parts[1].rstrip("s")
                    repo = hub.find(kind, "/".join(parts[2:4]))
                    if repo is None:
                        return self._missing(f"repo {'/'.join(parts[2:4])} not found")
                    if parts[4] == "revision":
                        return self._json({"id": repo.repo_id, "sha": repo.sha, "private": False,
                                           "siblings": [{"rfilename": f} for f in repo.files]})
                    if parts[4] == "tree":
                        return self._json([{"type": "file", "path": f, "size": len(d), "oid": Repo.blob_id(d)}
                                           for f, d in repo.files.items()])
                    return self._missing("unknown api route")
                kind = "dataset" if parts[0] == "datasets" else "model"
                if kind == "dataset":
                    parts = parts[1:]
                # /{org}/{name}/resolve/{rev}/{file...}
                repo = hub.find(kind, "/".join(parts[:2]))
                if repo is None or len(parts) < 5 or parts[2] != "resolve":
                    return self._missing("repo not found")
                name = "/".join(parts[4:])
                if name not in repo.files:
                    return self._missing(f"entry {name} not found")
                data = repo.files[name]
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                chunk = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.sha)
                self.send_header("ETag", f'"{Repo.blob_id(data)}"')
                self.send_header("Content-Length", str(len(chunk)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                key = (repo.repo_id, name)
                if hub.fail_after is not None and key not in hub._cut and len(chunk) > hub.fail_after:
                    hub._cut.add(key)
                    self.wfile.write(chunk[: hub.fail_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-file
                    return
                self.wfile.write(chunk)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
