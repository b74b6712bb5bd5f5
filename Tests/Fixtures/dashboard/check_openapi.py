#!/usr/bin/env python3
"""Checks a running KafkaSync HTTP server against docs/openapi.yaml.

    check_openapi.py --spec docs/openapi.yaml --url http://127.0.0.1:PORT/ [--token T [--reads-open]] [--job-id ID]

Every path and method of the spec is called (the GETs as they are, and with a bad parameter where one is
declared; POST /api/dlq/replay with an unknown id; POST /api/jobs with an invalid body). Each answer's status
must be one the spec lists for it, its JSON body must validate against that status's schema (OpenAPI 3.1,
components resolved, formats checked), and no answer may carry an Access-Control-Allow-Origin header. With a
token: /api without it answers 401 (with --reads-open, as a server without a configured token answers: only the
POST routes need the token, the per-process one of the page URL's fragment). /api/events is opened and must be text/event-stream (the events read
within 2 s are validated against Event); /metrics must be text/plain with kafkasync_build_info.
/api/transfers/{jobID} is called with --job-id (or the newest transfer when not given) and with an unknown id
(404). Exits 0 when all matched, 1 listing every mismatch, 2 on a usage error.
Needs pyyaml and openapi-schema-validator (scripts/bootstrap installs them).
"""
import argparse
import http.client
import json
import sys
import time
import urllib.parse

try:
    import yaml
    from openapi_schema_validator import OAS31Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012
except ImportError as error:  # pragma: no cover - reported to the caller
    print(f"check_openapi: {error.name} is not installed (scripts/bootstrap installs it)", file=sys.stderr)
    sys.exit(2)

SPEC_URI = "urn:kafkasync:openapi"
ORIGIN = "http://elsewhere.invalid"  # sent on every request: a CORS-open server would answer with it


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower(), "")

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Checker:
    def __init__(self, spec, base_url, token, reads_open=False):
        self.spec = spec
        self.base = urllib.parse.urlsplit(base_url)
        self.token = token
        self.reads_open = reads_open
        self.mismatches = []
        self.checked = set()  # (method, path template) called at least once
        registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
        self.registry = registry

    # ---- HTTP ----

    def connection(self, timeout=15):
        return http.client.HTTPConnection(self.base.hostname, self.base.port or 80, timeout=timeout)

    def request(self, method, target, body=None, token=True, headers=None):
        all_headers = {"Accept": "application/json", "Origin": ORIGIN, "Connection": "close"}
        if token and self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        connection = self.connection()
        try:
            connection.request(method, self.base.path.rstrip("/") + target, body=data, headers=all_headers)
            response = connection.getresponse()
            answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()
        self.check_no_cors(method, target, answer)
        return answer

    # ---- the spec ----

    def operation(self, template, method):
        return (self.spec.get("paths", {}).get(template) or {}).get(method.lower())

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"]
            if not pointer.startswith("#/"):
                raise ValueError(f"unsupported $ref {pointer}")
            node = self.spec
            for part in pointer[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validate(self, what, schema, instance):
        """Validates against a schema of the spec; its #/components/… references resolve in the spec."""
        validator = OAS31Validator(self.rebase(schema), registry=self.registry,
                                   format_checker=OAS31Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        for error in errors[:10]:
            place = "/".join(str(p) for p in error.absolute_path) or "(root)"
            self.fail(f"{what}: body at {place}: {error.message}")
        return not errors

    def rebase(self, node):
        """The schema with local references ("#/…") made absolute in the spec's resource."""
        if isinstance(node, dict):
            return {k: (SPEC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#/") else self.rebase(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [self.rebase(v) for v in node]
        return node

    # ---- checks ----

    def fail(self, message):
        self.mismatches.append(message)
        print(f"  MISMATCH {message}", flush=True)

    def check_no_cors(self, method, target, answer):
        for name in answer.headers:
            if name.startswith("access-control-"):
                self.fail(f"{method} {target}: answers with {name}: {answer.headers[name]} (CORS must stay closed)")

    def check(self, method, template, target=None, body=None, expect=None, token=True):
        """Calls the route and checks the answer against the spec; returns the answer (or None)."""
        target = target or template
        what = f"{method} {target}" + ("" if token else " (no token)")
        self.checked.add((method, template))
        operation = self.operation(template, method)
        if operation is None:
            self.fail(f"{what}: the spec has no {method} {template}")
            return None
        try:
            answer = self.request(method, target, body=body, token=token)
        except (OSError, http.client.HTTPException) as error:
            self.fail(f"{what}: no answer ({error})")
            return None
        responses = operation.get("responses", {})
        listed = str(answer.status) in responses
        print(f"  {what} -> {answer.status} {answer.header('content-type')}", flush=True)
        if expect is not None and answer.status not in (expect if isinstance(expect, tuple) else (expect,)):
            self.fail(f"{what}: status {answer.status}, expected {expect}: {answer.body[:200]!r}")
        if not listed:
            self.fail(f"{what}: status {answer.status} is not among the spec's {sorted(responses)}")
            return answer
        response = self.resolve(responses[str(answer.status)])
        content = response.get("content") or {}
        if "application/json" in content:
            if not answer.header("content-type").startswith("application/json"):
                self.fail(f"{what}: content-type {answer.header('content-type')!r}, the spec says application/json")
            try:
                instance = answer.json()
            except ValueError as error:
                self.fail(f"{what}: the body is not JSON ({error}): {answer.body[:200]!r}")
                return answer
            schema = content["application/json"].get("schema")
            if schema is not None:
                self.validate(what, schema, instance)
        return answer

    def check_events(self):
        template = "/api/events"
        self.checked.add(("GET", template))
        what = f"GET {template}"
        target = template
        if self.token:
            target += "?token=" + urllib.parse.quote(self.token)
        connection = self.connection(timeout=5)
        try:
            connection.request("GET", self.base.path.rstrip("/") + target,
                               headers={"Accept": "text/event-stream", "Origin": ORIGIN})
            sock = connection.sock  # the response takes it over; its timeout bounds each read below
            response = connection.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            self.check_no_cors("GET", template, Answer(response.status, headers, b""))
            print(f"  {what} -> {response.status} {headers.get('content-type', '')}", flush=True)
            if response.status != 200:
                self.fail(f"{what}: status {response.status}: {response.read(300)!r}")
                return
            if not headers.get("content-type", "").startswith("text/event-stream"):
                self.fail(f"{what}: content-type {headers.get('content-type')!r}, expected text/event-stream")
            self.read_events(sock, response)
        except (OSError, http.client.HTTPException) as error:
            self.fail(f"{what}: no answer ({error})")
        finally:
            connection.close()
        # The header form of the token works as well, and no token is refused.
        if self.token and not self.reads_open:
            self.check("GET", template, target=template, token=False, expect=401)

    def read_events(self, sock, response, seconds=2.0):
        """Reads lines for up to `seconds` (at least one line), validating complete events against Event."""
        deadline = time.monotonic() + seconds
        event, data, lines = None, [], 0
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                raw = response.fp.readline()
            except (TimeoutError, OSError):
                break
            if not raw:
                break
            lines += 1
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if data and event not in (None, "reset"):
                    try:
                        self.validate(f"event {event}", {"$ref": "#/components/schemas/Event"}, json.loads("\n".join(data)))
                    except ValueError:
                        self.fail(f"event {event}: data is not JSON: {data!r}")
                event, data = None, []
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" ") if line.startswith("data: ") else line[5:])
        print(f"  GET /api/events: {lines} line(s) in {seconds:.0f} s", flush=True)

    def check_metrics(self):
        answer = self.check("GET", "/metrics", expect=200, token=False)
        if answer is None:
            return
        if not answer.header("content-type").startswith("text/plain"):
            self.fail(f"GET /metrics: content-type {answer.header('content-type')!r}, expected text/plain")
        if b"kafkasync_build_info" not in answer.body:
            self.fail("GET /metrics: no kafkasync_build_info")

    def run(self, job_id):
        print("check_openapi: routes", flush=True)
        self.check("GET", "/healthz", expect=200, token=False)
        self.check("GET", "/readyz", expect=(200, 503), token=False)
        self.check("GET", "/api/status", expect=200)
        self.check("GET", "/api/activity", target="/api/activity?minutes=60", expect=200)
        self.check("GET", "/api/activity", target="/api/activity?minutes=0", expect=400)
        page = self.check("GET", "/api/transfers", expect=200)
        self.check("GET", "/api/transfers", target="/api/transfers?status=completed,failed&name=a&limit=5", expect=200)
        self.check("GET", "/api/transfers", target="/api/transfers?limit=0", expect=400)
        first = self.check("GET", "/api/transfers", target="/api/transfers?limit=1", expect=200)
        cursor = self.body_field(first, "next_cursor")
        if cursor:
            self.check("GET", "/api/transfers",
                       target="/api/transfers?limit=1&cursor=" + urllib.parse.quote(cursor), expect=200)
        if not job_id:
            transfers = self.body_field(page, "transfers") or []
            job_id = transfers[0].get("job_id") if transfers and isinstance(transfers[0], dict) else None
            if job_id:
                print(f"  (no --job-id: the newest transfer, {job_id})", flush=True)
        if job_id:
            self.check("GET", "/api/transfers/{jobID}", target="/api/transfers/" + urllib.parse.quote(job_id, safe=""),
                       expect=200)
        else:
            print("  (no transfer to ask /api/transfers/{jobID} for: only the unknown id is checked)", flush=True)
        self.check("GET", "/api/transfers/{jobID}", target="/api/transfers/no-such-job-" + str(int(time.time())),
                   expect=404)
        self.check("GET", "/api/dlq", expect=200)
        self.check("GET", "/api/queue", expect=200)
        replay = self.check("POST", "/api/dlq/replay", body={"ids": ["nonexistent:0"]}, expect=200)
        unknown = self.body_field(replay, "unknown")
        if replay is not None and replay.status == 200 and unknown != ["nonexistent:0"]:
            self.fail(f"POST /api/dlq/replay: unknown is {unknown!r}, expected ['nonexistent:0']")
        self.check("POST", "/api/jobs", body={}, expect=400)
        self.check_events()
        self.check_metrics()
        if self.token:
            print("check_openapi: without the token", flush=True)
            self.check("GET", "/api/status", token=False, expect=200 if self.reads_open else 401)
            self.check("POST", "/api/dlq/replay", body={"ids": ["nonexistent:0"]}, token=False, expect=401)
            self.check("POST", "/api/jobs", body={}, token=False, expect=401)
        for template, item in self.spec.get("paths", {}).items():
            for method in item:
                if method in ("get", "post", "put", "patch", "delete") and (method.upper(), template) not in self.checked:
                    self.fail(f"{method.upper()} {template}: in the spec, not checked (teach check_openapi.py to call it)")

    @staticmethod
    def body_field(answer, name):
        if answer is None or not answer.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            body = answer.json()
        except ValueError:
            return None
        return body.get(name) if isinstance(body, dict) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="docs/openapi.yaml")
    parser.add_argument("--url", required=True, help="the server's base URL, e.g. http://127.0.0.1:8080/")
    parser.add_argument("--token", help="the bearer token the server was given")
    parser.add_argument("--reads-open", action="store_true",
                        help="GETs need no token (no token configured: only POSTs need the page's one)")
    parser.add_argument("--job-id", help="a completed job for GET /api/transfers/{jobID}")
    arguments = parser.parse_args()
    with open(arguments.spec, encoding="utf-8") as file:
        spec = yaml.safe_load(file)
    checker = Checker(spec, arguments.url, arguments.token, arguments.reads_open)
    checker.run(arguments.job_id)
    if checker.mismatches:
        print(f"check_openapi: FAILED: {len(checker.mismatches)} mismatch(es):", file=sys.stderr)
        for mismatch in checker.mismatches:
            print(f"  - {mismatch}", file=sys.stderr)
        return 1
    print(f"check_openapi: passed ({len(checker.checked)} routes)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
