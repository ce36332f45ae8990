"""Squall's stand-in for ``eventlet``, which StackStorm's Python environment provides and packs
import without declaring it. greenlet (its C core) has no WASI build, and a component runs one
call on one thread, so green threads are plain calls:

- ``sleep(seconds)`` sleeps (``time.sleep``); ``monkey_patch()`` does nothing;
- ``spawn(fn, *args, **kwargs)`` runs ``fn`` at once and returns a ``GreenThread`` whose
  ``wait()`` returns its value (or raises what it raised); ``spawn_n`` runs it and returns None;
- ``GreenPool`` runs each spawned call at once (``imap`` and ``starmap`` map in order);
- ``Timeout(seconds)`` is a context manager that does not interrupt (the execution's own
  timeout still applies);
- ``eventlet.green.<module>`` is the standard library's ``<module>``.
"""

import time as _time

__all__ = ["sleep", "monkey_patch", "spawn", "spawn_n", "GreenThread", "GreenPool", "Timeout"]

__version__ = "0.0.0+squall"


def sleep(seconds=0):
    _time.sleep(seconds)


def monkey_patch(*args, **kwargs):
    return None


class GreenThread(object):
    def __init__(self, fn, args, kwargs):
        self._value = None
        self._error = None
        try:
            self._value = fn(*args, **kwargs)
        except BaseException as e:
            self._error = e

    def wait(self):
        if self._error is not None:
            raise self._error
        return self._value

    def kill(self, *args):
        return None

    cancel = kill

    def link(self, fn, *args, **kwargs):
        fn(self, *args, **kwargs)


def spawn(fn, *args, **kwargs):
    return GreenThread(fn, args, kwargs)


def spawn_n(fn, *args, **kwargs):
    fn(*args, **kwargs)


class GreenPool(object):
    def __init__(self, size=1000):
        self.size = size

    def spawn(self, fn, *args, **kwargs):
        return spawn(fn, *args, **kwargs)

    def spawn_n(self, fn, *args, **kwargs):
        spawn_n(fn, *args, **kwargs)

    def waitall(self):
        return None

    def imap(self, fn, *iterables):
        return map(fn, *iterables)

    def starmap(self, fn, iterable):
        return (fn(*args) for args in iterable)

    def running(self):
        return 0

    def free(self):
        return self.size


class Timeout(Exception):
    def __init__(self, seconds=None, exception=None):
        super().__init__(seconds)
        self.seconds = seconds

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def cancel(self):
        return None
