"""The ``squall:plugin/action`` world's export, over :func:`squall._core.run_action`."""

import wit_world
from componentize_py_types import Err
from wit_world.imports.action_types import ActionError as _WitError

from . import _core


class WitWorld(wit_world.WitWorld):
    def run(self, ctx, params_json):
        ok, value = _core.run_action(ctx, params_json)
        if ok:
            return value
        message, result_json = value
        raise Err(_WitError(message=message, result_json=result_json))
