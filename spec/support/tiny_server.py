"""A tiny HTTP(S) server for the security spec: what the DashScope stand-in cannot be.

    python3 spec/support/tiny_server.py PORT_FILE [CERT KEY]

With CERT and KEY it speaks TLS (a self-signed certificate the spec makes with openssl), so the
client's peer verification and its ca_file option can be tried. Routes:
  GET /api/v1/tasks/<id>   a SUCCEEDED task answer (docs/protocol.md §4)
  GET /api/v1/tasks/moved  302 to /stolen on this server: a client must not follow it
  GET /stolen              records that it was reached (and whether Authorization came along)
  GET /__seen              what /stolen saw, as JSON
Stdlib only; loopback only; serves until killed.
"""
import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):   # quiet
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/__seen":
            return self.reply(200, SEEN)
        if self.path == "/stolen":
            SEEN.append({"authorization": self.headers.get("Authorization")})
            return self.reply(200, {"stolen": True})
        if self.path == "/api/v1/tasks/moved":
            return self.reply(302, {"moved": True}, [("Location", "/stolen")])
        if self.path.startswith("/api/v1/tasks/"):
            task_id = self.path.rsplit("/", 1)[1]
            return self.reply(200, {"request_id": "r-1", "output": {
                "task_id": task_id, "task_status": "SUCCEEDED", "video_url": "https://example.com/v.mp4",
                "submit_time": "2026-01-01 00:00:00.000", "scheduled_time": "2026-01-01 00:00:00.100",
                "end_time": "2026-01-01 00:00:01.000"}, "usage": {"video_duration": 1}})
        return self.reply(404, {"code": "NotFound", "message": "no such path"})


def main():
    port_file = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if len(sys.argv) == 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
