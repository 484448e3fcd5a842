#!/usr/bin/python3
"""A web server on 127.0.0.1 for wisp's URL-input tests.

Routes:
  /media/REL      the file ROOT/REL (Range requests honoured: 206, 416)
  /cut/REL        ROOT/REL announced whole, half of it sent, then the
                  connection closed (a transfer that breaks off)
  /watch?...      an HTML page (a "page URL": not media)
  /stall          reads the request and never answers (timeouts)
  anything else   404
Each request is logged as one JSON line {"path", "range", "status"} to --log.
Binds port 0 and writes the port to --port-file. Python 3 stdlib only.
"""
import argparse
import http.server
import json
import mimetypes
import os
import socket
import threading
import time

PAGE = b"""<!DOCTYPE html>
<html><head><title>A video page</title></head>
<body><p>The player loads the media with a script.</p></body></html>
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    lock = threading.Lock()
    root = os.path.normpath(args.root)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def log_line(self, status):
            entry = {"path": self.path, "range": self.headers.get("Range"), "status": status}
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

        def send_body(self, status, body, content_type, headers=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.log_line(status)
            self.wfile.write(body)

        def local_file(self, rel):
            path = os.path.normpath(os.path.join(root, rel))
            if not path.startswith(root + os.sep) or not os.path.isfile(path):
                return None
            return path

        def do_GET(self):
            from urllib.parse import unquote, urlsplit
            url = urlsplit(self.path)
            parts = url.path.split("/", 2)
            if url.path == "/watch":
                return self.send_body(200, PAGE, "text/html; charset=utf-8")
            if url.path == "/stall":
                self.log_line(0)
                time.sleep(120)
                self.close_connection = True
                return
            if len(parts) == 3 and parts[1] in ("media", "cut"):
                path = self.local_file(unquote(parts[2]))
                if path is not None:
                    return self.serve(path, cut=parts[1] == "cut")
            self.send_body(404, b"not found", "text/plain")

        def serve(self, path, cut):
            data = open(path, "rb").read()
            kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
            start, status, headers = 0, 200, [("Accept-Ranges", "bytes")]
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0] or 0)
                if start >= len(data) and len(data) > 0:
                    return self.send_body(416, b"", kind, [("Content-Range", "bytes */%d" % len(data))])
                status = 206
                headers.append(("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data))))
            body = data[start:]
            if not cut:
                return self.send_body(status, body, kind, headers)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.log_line(status)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
