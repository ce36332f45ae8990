"""Squall's Python SDK: write an action or a sensor as a Python function or class, built by
``squall pack build`` into a WebAssembly component of the ``squall:plugin/action`` or
``squall:plugin/sensor`` world (``plugin-sdk/wit/squall.wit``) with componentize-py.

An action (``<pack>/actions/<name>/app.py``, built to ``<pack>/actions/<name>.wasm``)::

    import squall

    @squall.action
    def run(ctx: squall.Context, host: str, count: int = 1) -> dict:
        squall.log.info("looking up %s" % host)
        answer = squall.http.get("https://dns.example/resolve?name=" + host)
        if answer.status != 200:
            raise squall.ActionError("lookup failed", result={"status": answer.status})
        return answer.json()

The parameters arrive as keyword arguments, validated by the server against the action's YAML
and then, by this SDK, against the function's annotations (``str``, ``int``, ``float``,
``bool``, ``dict``, ``list``, ``Optional[...]``): a value of the wrong type fails the run
naming the parameter, as does a parameter the function does not take (unless it takes
``**kwargs``). The return value (anything ``json.dumps`` takes) is the execution's ``result``.

A sensor (``<pack>/sensors/<name>/app.py``, built to ``<pack>/sensors/<name>.wasm``)::

    @squall.sensor
    class Watch:
        def poll(self, ctx: squall.SensorContext):
            n = int(squall.datastore.get("n") or 0) + 1
            squall.datastore.set("n", str(n))
            squall.emit("mypack.tick", {"n": n})

        def webhook(self, ctx, request: squall.WebhookRequest) -> squall.WebhookResponse:
            return squall.WebhookResponse(202, {"seen": len(request.body)})

Logging (``squall.log`` or the standard ``logging`` module) goes to the execution's log;
``print`` to its stdout. ``squall.http`` is the SDK's HTTP client; ``urllib.request`` and
``http.client`` work too, over the same ``wasi:http`` and grants.
"""

import logging as _logging

import squall_http as _squall_http

from . import log
from . import http
from . import datastore
from ._core import (
    ActionError,
    Context,
    SensorContext,
    WebhookRequest,
    WebhookResponse,
    action,
    emit,
    sensor,
)

__all__ = [
    "ActionError",
    "Context",
    "SensorContext",
    "WebhookRequest",
    "WebhookResponse",
    "action",
    "datastore",
    "emit",
    "http",
    "log",
    "sensor",
]

# The standard library's HTTP (`http.client`, hence `urllib.request`) goes over wasi:http too,
# and a raw socket fails saying why (as for StackStorm content).
_squall_http.install()

# The standard `logging` module writes to the execution's log, every level.
_root = _logging.getLogger()
_root.addHandler(log.Handler())
_root.setLevel(_logging.DEBUG)
