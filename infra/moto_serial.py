#!/usr/bin/env python3
"""moto_server with requests serialised: same CLI (`-H HOST -p PORT`), one request at a time.

`FEEDLOOP_MOTO_ALSO_HOST=ADDR` adds a second listener on ADDR (same port, same state):
Docker's bridge address, so `sam local`'s containers, which run on that bridge, reach
the moto that host-side tools use on 127.0.0.1.

Two changes to stock moto_server, both about faithfulness rather than features:

* moto's in-memory backends take no locks and moto_server handles requests on threads,
  so two concurrent conditional writes can both pass their condition. Real DynamoDB
  evaluates conditions and transactions atomically; serialising requests gives tests
  that guarantee back, so a lost update a test finds is ours, not moto's. Clients must
  not long-poll SQS against it (a waiting receive would hold the lock).
* moto's TransactWriteItems deep-copies every table it touches (once per item) to be
  able to roll back, which makes each transaction O(table size). Here the transaction
  snapshots only the items it touches and restores those on cancellation: the same
  all-or-nothing outcome, in constant time.
"""
import copy as _copy
import os
import threading
import types

import moto.dynamodb.models as ddb_models
import moto.server as server
from moto.dynamodb.models.table import Table

_lock = threading.Lock()
_run_simple = server.run_simple


def _serialised(app):
    def wrapped(environ, start_response):
        with _lock:
            return list(app(environ, start_response))

    return wrapped


def run_simple(host, port, app, **kwargs):
    app = _serialised(app)
    also = os.environ.get("FEEDLOOP_MOTO_ALSO_HOST", "").strip()
    if also:
        from werkzeug.serving import make_server

        extra = make_server(also, port, app, threaded=True)
        threading.Thread(target=extra.serve_forever, daemon=True).start()
    return _run_simple(host, port, app, **kwargs)


server.run_simple = run_simple

# The stock implementation's table-level backup becomes a no-op...
ddb_models.copy = types.SimpleNamespace(
    deepcopy=lambda x, memo=None: x if isinstance(x, Table) else _copy.deepcopy(x, memo)
)
_transact = ddb_models.DynamoDBBackend.transact_write_items


def _key_of(backend, op_type, op):
    if op_type == "Put":
        table = backend.get_table(op["TableName"])
        key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = op["Item"][table.range_key_attr]
        return key
    return op["Key"]


def transact_write_items(self, transact_items):
    # ...and the touched items are snapshotted instead.
    snapshot = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        try:
            key = _key_of(self, op_type, op)
            current = self.get_item(op["TableName"], key)
        except Exception:  # let the stock code report malformed requests
            continue
        before = _copy.deepcopy(current.to_json()["Attributes"]) if current else None
        snapshot.append((op["TableName"], key, before))
    try:
        return _transact(self, transact_items)
    except Exception:
        for table_name, key, before in reversed(snapshot):
            if before is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before)
        raise


ddb_models.DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    server.main()
