#!/usr/bin/env python3
"""Checks that Prometheus scraped a consumer and that every query of the Grafana dashboard has data.

    prometheus_check.py --prometheus http://127.0.0.1:PORT --grafana deploy/grafana/kafkasync.json
                        --expect-completed N [--allow-empty SUBSTRING ...] [--timeout 120]

Waits until sum(kafkasync_transfers_total{status="completed"}) is N in Prometheus, then runs every `expr` of the
dashboard's panels as an instant query (Grafana's $__rate_interval and $__interval become 1m, $__range 1h): each
must parse and return at least one series. A query stays empty for a while after the first scrapes (rate needs
two samples), so each is retried until the timeout. Queries containing an --allow-empty substring (repeatable;
for counters a happy run never increments, such as kafkasync_retries_total) may be empty: they are asked once
and listed when empty. Exits 0 when all passed, 1 listing the failed queries.
"""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

COMPLETED = 'sum(kafkasync_transfers_total{status="completed"})'
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}


def log(message):
    print(f"prometheus_check: {message}", flush=True)


def query(base, expr):
    """An instant query: (result list, None) or (None, error text)."""
    url = f"{base.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:  # 400 for a parse error, with Prometheus' JSON error body
        try:
            body = json.load(error)
        except ValueError:
            return None, f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        return None, f"no answer ({error})"
    if body.get("status") != "success":
        return None, f"{body.get('errorType', 'error')}: {body.get('error', body)}"
    return (body.get("data") or {}).get("result") or [], None


def substitute(expr):
    """Grafana's variables replaced; the unknown ones left for the caller to report."""
    def value(match):
        name = match.group(1) or match.group(2)
        return GRAFANA_VARIABLES.get(name, match.group(0))
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def expressions(node, title=None):
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    if isinstance(node, dict):
        title = node.get("title", title) if "targets" in node or "panels" in node else title
        if isinstance(node.get("expr"), str) and node["expr"].strip():
            yield title, node["expr"]
        for key, value in node.items():
            if key != "templating":
                yield from expressions(value, title)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item, title)


def wait_completed(base, expected, deadline):
    log(f"waiting for {COMPLETED} == {expected}")
    last = None
    while True:
        result, error = query(base, COMPLETED)
        if error is None and result:
            try:
                last = float(result[0]["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                last = None
            if last == expected:
                log(f"Prometheus sees {expected} completed transfers")
                return None
        elif error is not None:
            last = error
        if time.monotonic() > deadline:
            return f"{COMPLETED} did not reach {expected} (last: {last if last is not None else 'no data'})"
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus' base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--grafana", required=True, help="the dashboard JSON (deploy/grafana/kafkasync.json)")
    parser.add_argument("--expect-completed", type=int, required=True)
    parser.add_argument("--allow-empty", action="append", default=[], metavar="SUBSTRING",
                        help="queries containing this may return no series (repeatable)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for the whole check (default 120)")
    arguments = parser.parse_args()
    deadline = time.monotonic() + arguments.timeout

    with open(arguments.grafana, encoding="utf-8") as file:
        dashboard = json.load(file)
    queries = []
    for title, expr in expressions(dashboard.get("panels", [])):
        if (title, expr) not in queries:
            queries.append((title, expr))
    if not queries:
        log(f"FAILED: no expr in {arguments.grafana}")
        return 1
    log(f"{len(queries)} queries in {arguments.grafana}")

    failure = wait_completed(arguments.prometheus, arguments.expect_completed, deadline)
    if failure:
        print(f"prometheus_check: FAILED: {failure}", file=sys.stderr)
        return 1

    failures, empty_allowed = [], []
    required = [(t, e) for t, e in queries if not any(s in e for s in arguments.allow_empty)]
    optional = [(t, e) for t, e in queries if any(s in e for s in arguments.allow_empty)]
    for title, expr in required + optional:
        promql = substitute(expr)
        unknown = re.findall(r"\$\{?\w+\}?", promql)
        if unknown:
            failures.append(f"{title}: {expr}: unknown Grafana variable(s) {', '.join(unknown)}")
            log(f"FAIL  {failures[-1]}")
            continue
        may_be_empty = (title, expr) in optional
        while True:
            result, error = query(arguments.prometheus, promql)
            if error is not None or result or may_be_empty or time.monotonic() > deadline:
                break
            time.sleep(1)
        if error is not None:
            failures.append(f"{title}: {promql}: {error}")
            log(f"FAIL  {title}: {promql}: {error}")
        elif not result:
            if may_be_empty:
                empty_allowed.append(f"{title}: {promql}")
                log(f"empty (allowed)  {title}: {promql}")
            else:
                failures.append(f"{title}: {promql}: no data")
                log(f"FAIL  {title}: {promql}: no data")
        else:
            values = ", ".join(f"{json.dumps(r.get('metric', {}), sort_keys=True)}={r.get('value', [None, '?'])[1]}"
                               for r in result[:4])
            log(f"ok    {title}: {promql} -> {len(result)} series: {values}")
    if empty_allowed:
        log(f"{len(empty_allowed)} allowed-empty quer{'y' if len(empty_allowed) == 1 else 'ies'} had no data:")
        for line in empty_allowed:
            log(f"  {line}")
    if failures:
        print(f"prometheus_check: FAILED: {len(failures)} of {len(queries)} queries:", file=sys.stderr)
        for line in failures:
            print(f"  - {line}", file=sys.stderr)
        return 1
    log(f"passed ({len(queries) - len(empty_allowed)} queries with data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
