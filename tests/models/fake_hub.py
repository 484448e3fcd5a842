#!/usr/bin/python3
"""A stand-in for the Hugging Face hub on 127.0.0.1, for wisp's download tests.

Serves ROOT/ORG/REPO/FILE at /ORG/REPO/resolve/REV/FILE (any REV) the way the
hub does: small files directly with a git-blob ETag; large ("LFS") files
(.bin, .pt, .safetensors) by a 302 to /cdn/... whose X-Linked-ETag is the
file's SHA-256 (the CDN's own ETag is not). Range requests are honoured
(206, 416). Each request is logged as one JSON line to --log.

Modes (--mode): ok; slow (512 KiB every 50 ms); drop (the first GET of each
file, not a range, sends its headers and half the body, then closes);
wrong-digest (X-Linked-ETag is a digest of other bytes); 404 (every file).
Binds port 0 and writes the port to --port-file. Python 3 stdlib only.
"""
import argparse
import hashlib
import http.server
import json
import os
import socket
import threading
import time

LFS_SUFFIXES = (".bin", ".pt", ".safetensors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", default="ok", choices=["ok", "slow", "drop", "wrong-digest", "404"])
    args = ap.parse_args()
    lock = threading.Lock()
    dropped = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def log_request_line(self, status, sent):
            entry = {"path": self.path, "range": self.headers.get("Range"), "status": status, "bytes": sent,
                     "auth": self.headers.get("Authorization")}
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

        def send_plain(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.log_request_line(status, len(body))
            self.wfile.write(body)

        def local_file(self, org, repo, name):
            # normpath, not realpath: the tests serve fixture folders through symlinks.
            path = os.path.normpath(os.path.join(args.root, org, repo, name))
            if not path.startswith(os.path.normpath(args.root) + os.sep) or not os.path.isfile(path):
                return None
            return path

        def do_GET(self):
            parts = self.path.split("?")[0].split("/")
            # /ORG/REPO/resolve/REV/FILE...   or   /cdn/ORG/REPO/FILE...
            if len(parts) >= 6 and parts[3] == "resolve":
                org, repo, name = parts[1], parts[2], "/".join(parts[5:])
                return self.resolve(org, repo, name)
            if len(parts) >= 5 and parts[1] == "cdn":
                return self.serve(self.local_file(parts[2], parts[3], "/".join(parts[4:])), "cdn")
            self.send_plain(404, b"not found")

        def resolve(self, org, repo, name):
            path = self.local_file(org, repo, name)
            if path is None or args.mode == "404":
                return self.send_plain(404, b'{"error":"Entry not found"}', [("X-Error-Code", "EntryNotFound")])
            data = open(path, "rb").read()
            if name.endswith(LFS_SUFFIXES):
                digest = hashlib.sha256(data if args.mode != "wrong-digest" else data + b"x").hexdigest()
                return self.send_plain(302, b"", [("Location", "/cdn/%s/%s/%s" % (org, repo, name)),
                                                  ("X-Linked-ETag", '"%s"' % digest),
                                                  ("X-Linked-Size", str(len(data))),
                                                  ("ETag", '"%s"' % digest)])
            self.serve(path, "git")

        def serve(self, path, kind):
            if path is None:
                return self.send_plain(404, b"not found")
            data = open(path, "rb").read()
            etag = (hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() if kind == "git"
                    else "cdn-" + hashlib.md5(data).hexdigest())
            start, status = 0, 200
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                first = rng[6:].split("-")[0]
                start = int(first or 0)
                if start >= len(data):
                    return self.send_plain(416, b"", [("Content-Range", "bytes */%d" % len(data))])
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("ETag", '"%s"' % etag)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.end_headers()
            if args.mode == "drop" and status == 200 and path not in dropped:
                dropped.add(path)
                self.log_request_line(status, len(body) // 2)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.log_request_line(status, len(body))
            step = (512 if args.mode == "slow" else 64) * 1024
            for pos in range(0, len(body), step):
                self.wfile.write(body[pos:pos + step])
                if args.mode == "slow":
                    time.sleep(0.05)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
