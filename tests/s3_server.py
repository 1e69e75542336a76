"""An S3-compatible server on loopback for the object-storage tests: moto in
server mode, with the folders given uploaded, and a proxy in front of it that
misbehaves as real networks do.

    python tests/s3_server.py BUCKET=DIR [BUCKET=DIR ...]

prints one JSON line, {"endpoint": ..., "faulty": ...}, and serves until its
standard input closes. Through "faulty", requests go to the same server, but:

- every response waits 20 ms, and each listing 300 ms (a slow server);
- the first GET of each object answers 500 (a transient failure);
- the second GET of each object sends its headers and half its body, then
  closes the connection (a body cut short);
- every GET of an object whose key holds "unreachable" answers 500.

A client that retries reads everything but the unreachable objects.
"""

import http.client
import http.server
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import Counter


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FaultyProxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None
    gets = Counter()
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        time.sleep(0.02)
        path = self.path.split("?", 1)[0]
        is_object = self.command == "GET" and path.count("/") >= 2 and not path.endswith("/")
        if self.command == "GET" and not is_object:
            time.sleep(0.3)
        if is_object:
            with self.lock:
                self.gets[path] += 1
                attempt = self.gets[path]
            if "unreachable" in path or attempt == 1:
                return self.reply(500, b"<Error><Code>InternalError</Code></Error>", {"Content-Type": "application/xml"})
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        kept = {k: v for k, v in response.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        if is_object and attempt == 2 and len(data) > 1:
            self.send_response(response.status)
            for k, v in kept.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        # A HEAD answer has no body but says how long the object is.
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.reply(response.status, data, kept, length)

    def reply(self, status, data, headers, length=None):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    from moto.server import ThreadedMotoServer
    import boto3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    for spec in sys.argv[1:]:
        bucket, folder = spec.split("=", 1)
        s3.create_bucket(Bucket=bucket)
        for dirpath, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, folder).replace(os.sep, "/")
                s3.upload_file(path, bucket, key)

    FaultyProxy.upstream = ("127.0.0.1", port)
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FaultyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    print(json.dumps({"endpoint": endpoint, "faulty": f"http://127.0.0.1:{proxy.server_address[1]}"}), flush=True)
    sys.stdin.read()
    proxy.shutdown()
    server.stop()


if __name__ == "__main__":
    main()
