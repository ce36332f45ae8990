"""Helpers of StackStorm's ``st2common/runners/utils.py`` that python-script actions use."""

import logging
import sys

__all__ = ["get_logger_for_python_runner_action", "get_action_class_instance"]

LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(module)s [-] %(message)s"

_LEVELS = {
    "audit": logging.INFO,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def get_logger_for_python_runner_action(action_name, log_level="debug"):
    """The logger ``actions.python.<action_name>``: lines go to stderr in StackStorm's format
    (so they land in the result's ``stderr``, as in StackStorm) and to the execution's log."""
    logger_name = "actions.python.%s" % (action_name)
    logger = logging.getLogger(logger_name)
    if not getattr(logger, "_squall_configured", False):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(console)
        import squall_st2

        logger.addHandler(squall_st2.ExecutionLogHandler())
        logger.propagate = False
        logger._squall_configured = True
    logger.setLevel(_LEVELS.get(str(log_level).lower(), logging.DEBUG))
    return logger


def get_action_class_instance(action_cls, config=None, action_service=None):
    """Instantiates ``action_cls`` as StackStorm does: with ``config`` and ``action_service``,
    or, for classes whose constructor takes only ``config``, with ``config`` and the service
    assigned afterwards."""
    kwargs = {"config": config, "action_service": action_service}
    try:
        action_instance = action_cls(**kwargs)
    except TypeError as e:
        if "unexpected keyword argument 'action_service'" not in str(e):
            raise e
        action_instance = action_cls(config=config)
        action_instance.action_service = action_service
    return action_instance
