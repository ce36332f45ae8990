"""The execution's log (``squall:plugin/log``): ``trace``, ``debug``, ``info``, ``warn``
(also ``warning``), ``error``. The host keeps at most the action's ``max_output`` bytes of log
text; lines past it are counted, not stored. ``Handler`` is a ``logging.Handler`` doing the
same for the standard ``logging`` module (installed on the root logger by ``import squall``).
"""

import logging

from wit_world.imports import log as _wit

__all__ = ["trace", "debug", "info", "warn", "warning", "error", "Handler"]


def _line(level, message):
    _wit.log(level, str(message))


def trace(message):
    _line(_wit.Level.TRACE, message)


def debug(message):
    _line(_wit.Level.DEBUG, message)


def info(message):
    _line(_wit.Level.INFO, message)


def warn(message):
    _line(_wit.Level.WARN, message)


warning = warn


def error(message):
    _line(_wit.Level.ERROR, message)


class Handler(logging.Handler):
    """Sends ``logging`` records to the execution's log at the nearest level."""

    def emit(self, record):
        try:
            message = self.format(record)
        except Exception:
            message = str(record.msg)
        if record.levelno >= logging.ERROR:
            level = _wit.Level.ERROR
        elif record.levelno >= logging.WARNING:
            level = _wit.Level.WARN
        elif record.levelno >= logging.INFO:
            level = _wit.Level.INFO
        elif record.levelno >= logging.DEBUG:
            level = _wit.Level.DEBUG
        else:
            level = _wit.Level.TRACE
        _wit.log(level, message)
