#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a real S3 API (moto server), for the upload tests.

Named as a fake on purpose: it produces faults a real object store shows but moto cannot be told to show
(a server that rejects checksum headers, 503s, a stalled upload), and counts the requests that reach it.
Everything else is forwarded unchanged to the real server.

Usage: s3_fault_proxy.py LISTEN_PORT UPSTREAM_PORT   (prints "ready" once listening)

Control (never forwarded), all POST with an empty body:
  /__proxy/reject-checksums/on|off    answer 400 InvalidArgument to any request with an x-amz-checksum-* header
                                       or x-amz-checksum-algorithm (as some S3-compatible servers do)
  /__proxy/fail/N/STATUS               answer the next N requests with STATUS (503: SlowDown; 403: AccessDenied)
  /__proxy/hold-parts-after/N          let N more UploadPart requests through, then hold every later one until
                                       /__proxy/release (the client sees a server that stopped answering)
  /__proxy/release                     let held requests through
  /__proxy/reset                       clear the faults and the counts
GET /__proxy/counts                    JSON: {"PutObject": n, "UploadPart": n, "UploadPartNumbers": [...], ...}
"""
import http.client
import http.server
import json
import sys
import threading

UPSTREAM = ("127.0.0.1", int(sys.argv[2]))
LOCK = threading.Lock()
RELEASED = threading.Event()
STATE = {}


def reset():
    STATE.update(reject_checksums=False, fail_count=0, fail_status=503, hold_after=None, counts={}, part_numbers=[], parts_started=0)
    RELEASED.set()


reset()


def operation(method, path, query):
    keys = {pair.split("=", 1)[0] for pair in query.split("&") if pair}
    if method == "PUT" and "partNumber" in keys and "uploadId" in keys:
        return "UploadPart"
    if method == "POST" and "uploads" in keys:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in keys:
        return "CompleteMultipartUpload"
    if method == "GET" and "uploadId" in keys:
        return "ListParts"
    if method == "GET" and "uploads" in keys:
        return "ListMultipartUploads"
    if method == "DELETE" and "uploadId" in keys:
        return "AbortMultipartUpload"
    if method == "PUT" and path.count("/") >= 2 and not path.endswith("/"):
        return "PutObject"
    return {"HEAD": "HeadObject", "GET": "GetObject", "DELETE": "DeleteObject", "PUT": "CreateBucket"}.get(method, method)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", content_type="application/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        body = f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>proxy</RequestId></Error>"
        self.reply(status, body.encode())

    def control(self):
        parts = self.path.split("/")[2:]
        with LOCK:
            if parts[0] == "counts":
                counts = dict(STATE["counts"], UploadPartNumbers=list(STATE["part_numbers"]))
                return self.reply(200, json.dumps(counts).encode(), "application/json")
            if parts[0] == "reject-checksums":
                STATE["reject_checksums"] = parts[1] == "on"
            elif parts[0] == "fail":
                STATE["fail_count"], STATE["fail_status"] = int(parts[1]), int(parts[2])
            elif parts[0] == "hold-parts-after":
                STATE["hold_after"], STATE["parts_started"] = int(parts[1]), 0
                RELEASED.clear()
            elif parts[0] == "release":
                STATE["hold_after"] = None
                RELEASED.set()
            elif parts[0] == "reset":
                reset()
        self.reply(200, b"ok", "text/plain")

    def handle_any(self):
        if self.path.startswith("/__proxy/"):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return self.control()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        name = operation(self.command, path, query)
        hold = False
        with LOCK:
            STATE["counts"][name] = STATE["counts"].get(name, 0) + 1
            if STATE["fail_count"] > 0:
                STATE["fail_count"] -= 1
                status = STATE["fail_status"]
                code = {503: "SlowDown", 403: "AccessDenied", 500: "InternalError"}.get(status, "InjectedFault")
                return self.error(status, code, "injected by the test proxy")
            if STATE["reject_checksums"] and any(h.lower().startswith("x-amz-checksum") or h.lower() == "x-amz-sdk-checksum-algorithm"
                                                 for h in self.headers.keys()):
                return self.error(400, "InvalidArgument", "checksum headers are not supported by this server")
            if name == "UploadPart":
                if STATE["hold_after"] is not None and STATE["parts_started"] >= STATE["hold_after"]:
                    hold = True
                else:
                    STATE["parts_started"] += 1
        if hold:
            RELEASED.wait()
        upstream = http.client.HTTPConnection(*UPSTREAM, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        if name == "UploadPart" and response.status == 200:
            number = int(dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)["partNumber"])
            with LOCK:
                STATE["part_numbers"].append(number)
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"):
                self.send_header(key, value)
        # A HEAD answer has no body, but its Content-Length is the object's size.
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
