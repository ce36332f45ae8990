"""The SDK's model: what the world modules (``_action_world``, ``_sensor_world``) call."""

import inspect
import json
import sys
import traceback
import types
import typing

from componentize_py_types import Err

# Imported now, while the component is built: only modules imported then are in it. An
# action's world has no emit.
try:
    from wit_world.imports import emit as _wit_emit
except ImportError:
    _wit_emit = None

_ACTION = []
_SENSOR = []


class Context(object):
    """The execution an action runs for (StackStorm's action context): ``execution_id`` (a
    UUIDv7), ``action_ref`` (``<pack>.<name>``), ``pack`` and ``user``."""

    def __init__(self, execution_id, action_ref, pack, user):
        self.execution_id = execution_id
        self.action_ref = action_ref
        self.pack = pack
        self.user = user

    def __repr__(self):
        return "<Context %s %s>" % (self.action_ref, self.execution_id)


class ActionError(Exception):
    """Fails the run with ``message``; ``result`` (any JSON value), when given, is recorded as
    the failed execution's result (StackStorm's ``return (False, result)``), else the host
    records ``{"error": message}``."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.message = str(message)
        self.result = result


def action(function):
    """Marks ``function(ctx, **params)`` as the module's action (one per component)."""
    if _ACTION:
        raise TypeError("one @squall.action per component (%s and %s)" % (_ACTION[0].__name__, function.__name__))
    _ACTION.append(function)
    return function


def sensor(cls):
    """Marks the class as the module's sensor (one per component): it is instantiated once
    per call and its ``poll(ctx)`` or ``webhook(ctx, request)`` called."""
    if _SENSOR:
        raise TypeError("one @squall.sensor per component (%s and %s)" % (_SENSOR[0].__name__, cls.__name__))
    _SENSOR.append(cls)
    return cls


_TYPES = {str: "str", int: "int", float: "float", bool: "bool", dict: "dict", list: "list"}


def _type_ok(value, annotation):
    """Whether ``value`` fits ``annotation`` (None: no check)."""
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is not None:
        annotation = origin
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _describe(annotation):
    if isinstance(annotation, type):
        return _TYPES.get(annotation, annotation.__name__)
    return str(annotation).replace("typing.", "")


def bind(function, params):
    """``function``'s keyword arguments from ``params``, checked against its signature and
    annotations. Raises :class:`ActionError` naming the parameter."""
    signature = inspect.signature(function)
    names = list(signature.parameters)[1:]  # after ctx
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    hints = typing.get_type_hints(function) if hasattr(function, "__annotations__") else {}
    kwargs = {}
    for name, value in params.items():
        if name not in names and not takes_kwargs:
            raise ActionError("parameter %s: %s() takes no such parameter" % (name, function.__name__))
        annotation = hints.get(name, inspect.Parameter.empty)
        if value is not None and not _type_ok(value, annotation):
            raise ActionError(
                "parameter %s: expected %s, got %s (%s)"
                % (name, _describe(annotation), type(value).__name__, json.dumps(value)[:80])
            )
        kwargs[name] = value
    for name in names:
        p = signature.parameters[name]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty and name not in kwargs:
            raise ActionError("parameter %s: required by %s() and not given" % (name, function.__name__))
    return kwargs


def run_action(ctx, params_json):
    """Runs the action: ``(True, result JSON)`` or ``(False, (message, result JSON or None))``."""
    if not _ACTION:
        return False, ("this component defines no @squall.action function", None)
    function = _ACTION[0]
    try:
        kwargs = bind(function, json.loads(params_json))
        result = function(Context(ctx.execution_id, ctx.action_ref, ctx.pack, ctx.user), **kwargs)
        return True, json.dumps(result)
    except ActionError as e:
        return False, (e.message, None if e.result is None else json.dumps(e.result))
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return False, ("%s: %s (traceback on stderr)" % (type(e).__name__, e), None)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class SensorContext(object):
    """The sensor being called: ``sensor_ref`` (``<pack>.<class_name>``), ``pack`` and
    ``config`` (the pack's configuration, a dict)."""

    def __init__(self, sensor_ref, pack, config):
        self.sensor_ref = sensor_ref
        self.pack = pack
        self.config = config


class WebhookRequest(object):
    """A request to one of the sensor's webhook urls: ``url``, ``headers`` (``[(name,
    value)]``, names in lowercase), ``body`` (bytes); ``header(name)``, ``text``, ``json()``."""

    def __init__(self, url, headers, body):
        self.url = url
        self.headers = list(headers)
        self.body = bytes(body)

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class WebhookResponse(object):
    """What the webhook's caller gets: ``status`` (default 202) and ``body`` (a JSON value)."""

    def __init__(self, status=202, body=None):
        self.status = int(status)
        self.body = {} if body is None else body


def emit(trigger_ref, payload):
    """Emits a trigger instance of ``trigger_ref`` (one of the sensor's ``trigger_types``) with
    ``payload`` (a dict checked against the type's ``payload_schema``); raises
    ``RuntimeError`` with the host's reason when refused. Sensors only."""
    if _wit_emit is None:
        raise RuntimeError(
            "emit is a sensor's (squall:plugin/sensor); actions dispatch triggers with core.inject_trigger"
        )
    try:
        _wit_emit.emit(trigger_ref, json.dumps(payload))
    except Err as e:
        raise RuntimeError(e.value)


def _sensor_call(method, ctx, *args):
    if not _SENSOR:
        return False, "this component defines no @squall.sensor class"
    try:
        instance = _SENSOR[0]()
        context = SensorContext(ctx.sensor_ref, ctx.pack, json.loads(ctx.config_json or "{}"))
        f = getattr(instance, method, None)
        if f is None:
            return False, "%s has no %s() method" % (type(instance).__name__, method)
        return True, f(context, *args)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return False, "%s: %s" % (type(e).__name__, e)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def poll(ctx):
    """Runs the sensor's ``poll``: ``(ok, error message)``."""
    ok, value = _sensor_call("poll", ctx)
    return ok, None if ok else value


def webhook(ctx, url, headers, body):
    """Runs the sensor's ``webhook``: ``(True, (status, body JSON))`` or ``(False, message)``."""
    ok, value = _sensor_call("webhook", ctx, WebhookRequest(url, headers, body))
    if not ok:
        return ok, value
    if not isinstance(value, WebhookResponse):
        return False, "webhook() must return a squall.WebhookResponse, not %s" % type(value).__name__
    return True, (value.status, json.dumps(value.body))
