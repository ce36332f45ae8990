"""The ``squall:plugin/sensor`` world's exports, over :mod:`squall._core`."""

import wit_world
from componentize_py_types import Err
from wit_world.imports.sensor_types import WebhookResponse as _WitResponse

from . import _core


class WitWorld(wit_world.WitWorld):
    def on_poll(self, ctx):
        ok, message = _core.poll(ctx)
        if not ok:
            raise Err(message)
        return None

    def on_webhook(self, ctx, request):
        ok, value = _core.webhook(ctx, request.url, request.headers, request.body)
        if not ok:
            raise Err(value)
        status, body_json = value
        return _WitResponse(status=status, body_json=body_json)
