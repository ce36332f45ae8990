#!/usr/bin/env python3
"""A stand-in for CI, the package registry, the deployers and the team chat of the cicd-canary
example: one HTTP server on 127.0.0.1 (port 8282, or the first argument), standard library only.

    GET  /ci/<sha>        {"sha": ..., "state": "passed"}  ("failed" for a SHA starting with "bad")
    POST /packages        {"app", "commit"}        -> 201 {"id": "pkg-<app>-<sha7>", ...}
    POST /releases        {"app", "package", ...}  -> 201 {"url": "http://.../releases/<package>"}
    POST /deploy          {"host", "package"}      -> {"host", "package", "status": "deployed"}
    GET  /health/<host>   503 {"status": "starting"} the first time per host, then {"status": "ok"}
    POST /rollback        {"host", "package"}      -> {"host", "status": "rolled back"}
    POST /chat            {"text"}                 -> {"ok": true}

Every request is printed, one line each, in the order received.
"""

import http.server
import json
import sys
import threading

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8282
checked = set()
lock = threading.Lock()


class Api(http.server.BaseHTTPRequestHandler):
    def reply(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # one line per request is printed by show() instead

    def show(self, *words):
        with lock:  # requests are served on threads: keep their lines whole
            print(*words, flush=True)

    def do_GET(self):
        self.show("GET ", self.path)
        parts = self.path.strip("/").split("/")
        if parts[0] == "ci" and len(parts) == 2:
            state = "failed" if parts[1].startswith("bad") else "passed"
            return self.reply(200, {"sha": parts[1], "state": state})
        if parts[0] == "health" and len(parts) == 2:
            with lock:
                first = parts[1] not in checked
                checked.add(parts[1])
            if first:
                return self.reply(503, {"host": parts[1], "status": "starting"})
            return self.reply(200, {"host": parts[1], "status": "ok"})
        self.reply(404, {"error": "no such endpoint"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or "{}")
        self.show("POST", self.path, json.dumps(body))
        if self.path == "/packages":
            package = f"pkg-{body['app']}-{body['commit'][:7]}"
            return self.reply(201, {"id": package, "app": body["app"], "commit": body["commit"]})
        if self.path == "/releases":
            url = f"http://127.0.0.1:{PORT}/releases/{body['package']}"
            return self.reply(201, {"url": url})
        if self.path == "/deploy":
            return self.reply(200, {**body, "status": "deployed"})
        if self.path == "/rollback":
            return self.reply(200, {"host": body["host"], "status": "rolled back"})
        if self.path == "/chat":
            return self.reply(200, {"ok": True})
        self.reply(404, {"error": "no such endpoint"})


if __name__ == "__main__":
    print(f"fake deployment API on http://127.0.0.1:{PORT}", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Api).serve_forever()
