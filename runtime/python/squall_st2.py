"""Squall's runner for StackStorm Python content — ``python-script`` actions and polling
sensors — inside one component per pack.

``squall pack build`` makes a component of the ``squall:plugin/python-pack`` world from this
module, Squall's ``st2common``/``st2reactor`` stand-ins and the pack's Python files, with
componentize-py. At build time this module imports every action and sensor module the pack's
metadata names (listed in the generated ``squall_pack_manifest``), so the component starts with
them loaded; a module that fails to import, or a sensor class that is missing or not a
``PollingSensor``, fails the build, naming the file.

Each execution calls ``run`` once with ``params-json`` =
``{"entry_point": <path under actions/>, "config": {...}, "parameters": {...},
"log_level": "debug", "env": {...}}`` (``env`` goes into ``os.environ``). As StackStorm's ``python_runner/python_action_wrapper.py``: the first
class (by name) in the module that implements ``run`` is instantiated with the pack's config
and an ``ActionService``, ``run(**parameters)`` is called, and a two-item tuple whose first item
is a bool is read as ``(succeeded, result)``. The answer is the JSON object
``{"exit_code": 0, "status": true|false|null, "result": ...}``; an exception is printed to
stderr as a traceback with ``exit_code`` 1, and a non-bool status with ``exit_code`` 220
(StackStorm's ``PYTHON_RUNNER_INVALID_ACTION_STATUS_EXIT_CODE``). The host turns that into
StackStorm's result ``{"stdout", "stderr", "exit_code", "result"}``.

Each poll of a sensor calls ``on_poll``: a new instance of its class (StackStorm's
``sensor_service``, the pack's config), ``setup()``, ``poll()``; an exception fails the poll
(nothing it dispatched or wrote is kept) with its traceback.
"""

import importlib.util
import inspect
import json
import logging
import os
import sys
import traceback

import squall_http
import squall_subprocess

# Before anything imports urllib.request or requests: their HTTP goes to the host; commands
# go to the process capability.
squall_http.install()
squall_subprocess.install()

import wit_world
from wit_world.imports import log as squall_log
from wit_world.imports import st2_datastore

from st2common.constants.keyvalue import ALLOWED_SCOPES, SYSTEM_SCOPE, USER_SCOPE, FULL_USER_SCOPE
from st2common.runners.utils import get_action_class_instance
from st2reactor.sensor.base import PollingSensor
from componentize_py_types import Err
from wit_world.imports import emit as squall_emit

__all__ = ["WitWorld", "ActionService", "ExecutionLogHandler"]

# As StackStorm's st2common/constants/runners.py.
PYTHON_RUNNER_INVALID_ACTION_STATUS_EXIT_CODE = 220

INVALID_STATUS_ERROR_MESSAGE = """
If this is an existing action which returns a tuple with two items, it needs to be updated to
either:

1. Return a list instead of a tuple
2. Return a tuple where a first items is a status flag - (True, ('item1', 'item2'))

For more information, please see: https://docs.stackstorm.com/upgrade_notes.html#st2-v1-6
""".strip()

_LEVELS = [
    (logging.ERROR, squall_log.Level.ERROR),
    (logging.WARNING, squall_log.Level.WARN),
    (logging.INFO, squall_log.Level.INFO),
    (logging.DEBUG, squall_log.Level.DEBUG),
]


class ExecutionLogHandler(logging.Handler):
    """Sends log records to the execution's log (``squall:plugin/log``)."""

    def emit(self, record):
        try:
            message = self.format(record)
        except Exception:
            message = str(record.msg)
        level = squall_log.Level.TRACE
        for threshold, wit_level in _LEVELS:
            if record.levelno >= threshold:
                level = wit_level
                break
        squall_log.log(level, message)


class KeyValuePair(object):
    """A key as ``list_values`` returns it (the attributes of StackStorm's client ``KeyValuePair`` model
    that actions read)."""

    def __init__(self, name, value, secret):
        self.id = name
        self.name = name
        self.value = value
        self.secret = secret
        self.encrypted = secret
        self.scope = SYSTEM_SCOPE

    def __repr__(self):
        return "<KeyValuePair name=%s,value=%s>" % (self.name, self.value)


class DatastoreService(object):
    """StackStorm's ``BaseDatastoreService`` over ``squall:plugin/st2-datastore``: a local key
    ``name`` is ``<pack>.<class>:name``, as StackStorm stores it. Failures are logged and read
    as StackStorm's service reads them (``None`` from ``get_value``, ``False`` from
    ``delete_value``)."""

    DATASTORE_NAME_SEPARATOR = ":"

    def __init__(self, logger, pack_name, class_name):
        self._logger = logger
        self._pack_name = pack_name
        self._class_name = class_name

    def get_user_info(self):
        raise NotImplementedError(
            "get_user_info needs StackStorm's API, which Squall does not give components"
        )

    def list_values(self, local=True, prefix=None):
        key_prefix = self._get_full_key_prefix(local=local, prefix=prefix)
        return [
            KeyValuePair(name, value, secret)
            for (name, value, secret) in st2_datastore.list_values(key_prefix or "")
        ]

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        self._check_scope(scope)
        name = self._get_full_key_name(name=name, local=local)
        try:
            return st2_datastore.get_value(name, bool(decrypt))
        except Exception as e:
            self._logger.exception('Exception retrieving value from datastore (name=%s): %s', name, e)
            return None

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        self._check_scope(scope)
        name = self._get_full_key_name(name=name, local=local)
        value = str(value)
        st2_datastore.set_value(name, value, int(ttl) if ttl else None, bool(encrypt))
        return True

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        self._check_scope(scope)
        name = self._get_full_key_name(name=name, local=local)
        try:
            return st2_datastore.delete_value(name)
        except Exception as e:
            self._logger.exception('Exception deleting value from datastore (name=%s): %s', name, e)
            return False

    def _check_scope(self, scope):
        if scope not in ALLOWED_SCOPES:
            raise ValueError(
                'Scope %s is unsupported. Supported scopes are %s.' % (scope, ALLOWED_SCOPES)
            )
        if scope in (USER_SCOPE, FULL_USER_SCOPE):
            raise ValueError(
                "Scope %s: Squall gives components system-scope keys only" % (scope,)
            )

    def _get_full_key_name(self, name, local):
        if local:
            return self._get_key_name_with_prefix(name)
        return name

    def _get_full_key_prefix(self, local, prefix=None):
        if local:
            key_prefix = self._get_local_keyvalue_prefix()
            if prefix:
                key_prefix += prefix
        else:
            key_prefix = prefix
        return key_prefix

    def _get_local_keyvalue_prefix(self):
        return self._get_datastore_key_prefix() + self.DATASTORE_NAME_SEPARATOR

    def _get_key_name_with_prefix(self, name):
        return self._get_datastore_key_prefix() + self.DATASTORE_NAME_SEPARATOR + name

    def _get_datastore_key_prefix(self):
        return "%s.%s" % (self._pack_name, self._class_name)


class ActionService(object):
    """What an action sees as ``self.action_service``, as StackStorm's ``ActionService``."""

    def __init__(self, action_wrapper):
        self._action_wrapper = action_wrapper
        self._datastore_service = None

    @property
    def datastore_service(self):
        if not self._datastore_service:
            from st2common.runners.utils import get_logger_for_python_runner_action

            logger = get_logger_for_python_runner_action(
                action_name=self._action_wrapper._class_name,
                log_level=self._action_wrapper._log_level,
            )
            self._datastore_service = DatastoreService(
                logger=logger,
                pack_name=self._action_wrapper._pack,
                class_name=self._action_wrapper._class_name,
            )
        return self._datastore_service

    def get_user_info(self):
        return self.datastore_service.get_user_info()

    def list_values(self, local=True, prefix=None):
        return self.datastore_service.list_values(local, prefix)

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        return self.datastore_service.get_value(name, local, scope=scope, decrypt=decrypt)

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        return self.datastore_service.set_value(
            name, value, ttl, local, scope=scope, encrypt=encrypt
        )

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        return self.datastore_service.delete_value(name, local, scope=scope)


class _Wrapper(object):
    def __init__(self, pack, log_level):
        self._pack = pack
        self._class_name = None
        self._log_level = log_level


class SensorService(object):
    """What a sensor sees as ``self.sensor_service``, as StackStorm's ``SensorService``
    (``st2reactor/container/sensor_wrapper.py``): ``dispatch`` emits a trigger instance of the
    poll (``squall:plugin/emit``), the datastore methods are ``action_service``'s with the
    sensor's class as the local prefix."""

    def __init__(self, pack, class_name):
        self._pack = pack
        self._class_name = class_name
        self._logger = self.get_logger("SensorService")
        self._datastore_service = DatastoreService(
            logger=self._logger, pack_name=pack, class_name=class_name
        )

    def get_logger(self, name):
        logger = logging.getLogger("%s.%s" % (self._class_name, name))
        if not getattr(logger, "_squall_configured", False):
            logger.addHandler(ExecutionLogHandler())
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            logger._squall_configured = True
        return logger

    def dispatch(self, trigger, payload=None, trace_tag=None):
        return self.dispatch_with_context(trigger, payload=payload)

    def dispatch_with_context(self, trigger, payload=None, trace_context=None):
        # As StackStorm with payload validation on: an instance its trigger type refuses is
        # logged and not dispatched.
        try:
            squall_emit.emit(trigger, json.dumps(payload if payload is not None else {}))
        except Err as e:
            self._logger.warning("Failed to validate payload (%s) for trigger \"%s\": %s", payload, trigger, e.value)
        return None

    def list_values(self, local=True, prefix=None):
        return self._datastore_service.list_values(local, prefix)

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        return self._datastore_service.get_value(name, local, scope=scope, decrypt=decrypt)

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        return self._datastore_service.set_value(name, value, ttl, local, scope=scope, encrypt=encrypt)

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        return self._datastore_service.delete_value(name, local, scope=scope)


# Entry point (path under actions/) -> module, loaded at build time.
_MODULES = {}
# Sensor class name -> class, loaded at build time.
_SENSORS = {}


# Module name -> file it was loaded from (one interpreter holds every entry point: two files of
# the same name would shadow each other where StackStorm runs each in its own process).
_LOADED = {}


def _load(path):
    module_name = os.path.basename(path)[: -len(".py")]
    if _LOADED.get(module_name, path) != path:
        raise Exception(
            "%s and %s are both module %r: entry points of one pack need distinct file names "
            "(they share one interpreter)" % (_LOADED[module_name], path, module_name)
        )
    _LOADED[module_name] = path
    directory = os.path.dirname(path)
    # As StackStorm's loader: the module's own directory is on sys.path.
    if directory not in sys.path:
        sys.path.append(directory)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _load_pack_modules():
    import squall_pack_manifest

    root = os.path.dirname(os.path.abspath(squall_pack_manifest.__file__))
    for entry_point in squall_pack_manifest.ACTIONS:
        _MODULES[entry_point] = _load(os.path.join(root, "actions", entry_point))
    for class_name, entry_point in squall_pack_manifest.SENSORS.items():
        module = _load(os.path.join(root, "sensors", entry_point))
        cls = getattr(module, class_name, None)
        if cls is None:
            raise Exception(
                'Plugin file "sensors/%s" doesn\'t expose class named "%s"' % (entry_point, class_name)
            )
        if not (isinstance(cls, type) and issubclass(cls, PollingSensor)):
            raise Exception(
                'sensors/%s: class "%s" is not a PollingSensor; Squall polls sensors (poll() every '
                "poll_interval seconds), it does not run a passive Sensor's run() loop"
                % (entry_point, class_name)
            )
        _SENSORS[class_name] = cls


def _action_class(module, entry_point):
    """The class StackStorm's ``register_plugin(Action, file)`` picks: the first, by name, of
    the module's own classes that implements ``run``."""
    classes = [
        kls
        for _, kls in inspect.getmembers(
            module, lambda m: inspect.isclass(m) and m.__module__ == module.__name__
        )
    ]
    for kls in classes:
        run = getattr(kls, "run", None)
        if inspect.isfunction(run) and not getattr(run, "__isabstractmethod__", False):
            return kls
    raise Exception(
        'Found no classes in plugin file "%s" matching requirements.' % (entry_point,)
    )


def _run(ctx, call):
    # As python_runner.py sets the action process's environment (this instance is the
    # execution's own, so nothing carries over).
    os.environ.update(call.get("env") or {})
    entry_point = call["entry_point"]
    module = _MODULES.get(entry_point)
    if module is None:
        raise Exception(
            'File "%s" has no action class or the file doesn\'t exist.' % (entry_point,)
        )
    wrapper = _Wrapper(ctx.pack, call.get("log_level") or "debug")
    action_cls = _action_class(module, entry_point)
    wrapper._class_name = action_cls.__name__
    action = get_action_class_instance(
        action_cls=action_cls,
        config=call.get("config") or {},
        action_service=ActionService(action_wrapper=wrapper),
    )
    output = action.run(**(call.get("parameters") or {}))
    if isinstance(output, tuple) and len(output) == 2:
        action_status, action_result = output
    else:
        action_status, action_result = None, output
    if action_status is not None and not isinstance(action_status, bool):
        sys.stderr.write(
            "Status returned from the action run() method must either be "
            "True or False, got: %s\n" % (action_status,)
        )
        sys.stderr.write(INVALID_STATUS_ERROR_MESSAGE)
        return {
            "exit_code": PYTHON_RUNNER_INVALID_ACTION_STATUS_EXIT_CODE,
            "status": None,
            "result": None,
        }
    answer = {"exit_code": 0, "status": action_status, "result": action_result}
    try:
        json.dumps(answer["result"])
    except TypeError:
        answer["result"] = str(answer["result"])
    return answer


class WitWorld(wit_world.WitWorld):
    """The component's exports: ``run`` (actions), ``on_poll`` and ``on_webhook`` (sensors)."""

    def on_poll(self, ctx):
        class_name = ctx.sensor_ref.split(".", 1)[1]
        cls = _SENSORS.get(class_name)
        if cls is None:
            raise Err("no Python sensor class %r was built into this pack" % (class_name,))
        try:
            sensor = cls(sensor_service=SensorService(ctx.pack, class_name), config=json.loads(ctx.config_json))
            sensor.setup()
            sensor.poll()
        except Exception:
            text = traceback.format_exc()
            sys.stderr.write(text)
            raise Err(text.strip().splitlines()[-1] + " (traceback on stderr)")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return None

    def on_webhook(self, ctx, request):
        raise Err(
            "Python sensors take no webhooks (StackStorm's webhooks are rules' core.st2.webhook)"
        )

    def run(self, ctx, params_json):
        try:
            answer = _run(ctx, json.loads(params_json))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            answer = {"exit_code": 1, "status": None, "result": None}
        sys.stdout.flush()
        sys.stderr.flush()
        return json.dumps(answer)


_load_pack_modules()
