"""``st2common.log``: ``getLogger`` as StackStorm's, over the standard ``logging`` module."""

import logging

__all__ = ["getLogger"]


def getLogger(name):
    """The logger ``name`` (StackStorm prefixes nothing for module loggers)."""
    return logging.getLogger(name)
