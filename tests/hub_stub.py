"""A minimal Hugging Face Hub server on 127.0.0.1 for offline tests of push_to_hub / from_pretrained.

It speaks the part of the Hub's HTTP API that huggingface_hub uses to create a repository,
commit files (uploaded inline, "regular" mode) and download a snapshot; repositories live in
memory. Anything else is answered 404 and recorded in ``unknown``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class HubStub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.unknown: list[str] = []
        self.card_metadata: list[Any] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubStub:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, obj: Any) -> None:
                self._reply(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_POST(self) -> None:
                body = self._body()
                if self.path == "/api/repos/create":
                    request = json.loads(body)
                    repo = f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
                    stub.repos.setdefault(repo, {})
                    return self._json({"url": f"{stub.endpoint}/{repo}"})
                if self.path == "/api/validate-yaml":  # the model card's front matter must be YAML
                    content = json.loads(body)["content"]
                    try:
                        stub.card_metadata.append(yaml.safe_load(content.split("---")[1]))
                    except (yaml.YAMLError, IndexError) as e:
                        return self._reply(400, json.dumps({"errors": [{"message": str(e)}]}).encode())
                    return self._json({"errors": [], "warnings": []})
                m = re.fullmatch(r"/api/models/(.+)/(preupload|commit)/([^/]+)", self.path)
                if m and m.group(2) == "preupload":
                    files = json.loads(body)["files"]
                    return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
                if m:
                    repo = stub.repos.setdefault(m.group(1), {})
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            repo[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    sha = hashlib.sha1(json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in repo.items())).encode()).hexdigest()
                    stub.commits[m.group(1)] = sha
                    return self._json({"commitUrl": f"{stub.endpoint}/{m.group(1)}/commit/{sha}", "commitOid": sha})
                stub.unknown.append(f"POST {self.path}")
                self._reply(404)

            def _get(self, head: bool) -> None:
                m = re.fullmatch(r"/api/models/(.+)/revision/([^/?]+)(\?.*)?", self.path)
                if m and m.group(1) in stub.commits:
                    repo = m.group(1)
                    return self._json({"id": repo, "sha": stub.commits[repo], "siblings": [{"rfilename": f} for f in sorted(stub.repos[repo])]})
                m = re.fullmatch(r"/api/models/(.+)/tree/([^/?]+)(\?.*)?", self.path)
                if m and m.group(1) in stub.commits:
                    files = stub.repos[m.group(1)]
                    return self._json([
                        {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()} for f, d in sorted(files.items())
                    ])
                m = re.fullmatch(r"/(.+)/resolve/([^/]+)/(.+)", self.path)
                if m and m.group(3) in stub.repos.get(m.group(1), {}):
                    data = stub.repos[m.group(1)][m.group(3)]
                    # like the Hub: large (LFS) files are named by their SHA-256, others by a git hash
                    lfs = m.group(3).endswith(".safetensors")
                    digest = hashlib.sha256(data) if lfs else hashlib.sha1(data)
                    headers = {"X-Repo-Commit": stub.commits[m.group(1)], "ETag": f'"{digest.hexdigest()}"'}
                    if lfs:
                        headers.update({"X-Linked-Etag": f'"{digest.hexdigest()}"', "X-Linked-Size": str(len(data))})
                    return self._reply(200, data, headers, head=head)
                stub.unknown.append(f"GET {self.path}")
                self._reply(404, b"{}", {"X-Error-Code": "EntryNotFound"}, head=head)

            def do_GET(self) -> None:
                self._get(head=False)

            def do_HEAD(self) -> None:
                self._get(head=True)

        return Handler
