#!/usr/bin/env python3
"""moto_server with requests serialised: same CLI (`-H HOST -p PORT`), one request at a time.

moto's in-memory backends take no locks, and moto_server handles requests on threads,
so two concurrent conditional writes can both pass their condition. Real DynamoDB
evaluates conditions and transactions atomically; serialising requests gives the
tests that guarantee back, so a lost update found by a test is ours, not moto's.
Clients must not long-poll SQS against it (a waiting receive would hold the lock).
"""
import threading

import moto.server as server

_lock = threading.Lock()
_run_simple = server.run_simple


def _serialised(app):
    def wrapped(environ, start_response):
        with _lock:
            return list(app(environ, start_response))

    return wrapped


def run_simple(host, port, app, **kwargs):
    return _run_simple(host, port, _serialised(app), **kwargs)


server.run_simple = run_simple

if __name__ == "__main__":
    server.main()
