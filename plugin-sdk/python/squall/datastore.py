"""Pack-local keys in the datastore (``squall:plugin/datastore``, sensors only): a name ``n``
is the system-scope key ``<pack>:n``. Writes become durable with the poll's (or webhook
call's) trigger instances when it returns without an error. Each function raises
:class:`DatastoreError` naming the problem (bad name, value over 64 KiB, a secret not
granted).
"""

from componentize_py_types import Err as _Err

# Imported now, while the component is built: only modules imported then are in it. An
# action's world has no datastore.
try:
    from wit_world.imports import datastore as _datastore
except ImportError:
    _datastore = None

__all__ = ["DatastoreError", "get", "set", "delete", "get_system"]


class DatastoreError(Exception):
    """The host refused a datastore call; the message says why."""


def _wit():
    if _datastore is None:
        raise DatastoreError(
            "the datastore is a sensor's (squall:plugin/sensor); actions get the values they "
            "need as parameters ({{ st2kv.system.<key> }})"
        )
    return _datastore


def _call(f, *args):
    try:
        return f(*args)
    except _Err as e:
        raise DatastoreError(e.value)


def get(name):
    """The value of the pack-local key ``name`` (str), or ``None`` when unset or expired."""
    return _call(_wit().get, name)


def set(name, value, ttl_seconds=None):
    """Sets the pack-local key ``name`` to ``value`` (str), expiring after ``ttl_seconds``."""
    _call(_wit().set, name, value, ttl_seconds)


def delete(name):
    """Deletes the pack-local key ``name``; ``False`` when it was not set."""
    return _call(_wit().delete, name)


def get_system(name):
    """The system-scope key ``name`` (a secret only when granted to the pack)."""
    return _call(_wit().get_system, name)
