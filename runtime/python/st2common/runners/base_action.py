"""``Action``, the base class of StackStorm python-script actions, as StackStorm's
``st2common/runners/base_action.py``."""

import abc

from st2common.runners.utils import get_logger_for_python_runner_action

__all__ = ["Action"]


class Action(object, metaclass=abc.ABCMeta):
    """Base action class other Python actions inherit from.

    ``self.config`` is the pack's config (``configs/<pack>.yaml``, templates rendered, defaults
    filled in), ``self.action_service`` reads and writes the datastore, ``self.logger`` logs
    to the execution."""

    description = None

    def __init__(self, config=None, action_service=None):
        self.config = config or {}
        self.action_service = action_service
        wrapper = getattr(action_service, "_action_wrapper", None)
        log_level = getattr(wrapper, "_log_level", "debug") if wrapper else "debug"
        self.logger = get_logger_for_python_runner_action(
            action_name=self.__class__.__name__, log_level=log_level
        )

    @abc.abstractmethod
    def run(self, **kwargs):
        raise NotImplementedError()
