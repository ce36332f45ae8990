"""``Sensor`` and ``PollingSensor``, the base classes of StackStorm sensors, as StackStorm's
``st2reactor/sensor/base.py`` defines them.

Squall polls: each poll makes a new instance of the sensor class (``sensor_service``, the
pack's ``config``), calls ``setup()`` and then ``poll()``. State that must outlast a poll goes
in the datastore (``self.sensor_service.set_value``), which StackStorm also recommends for
state that must survive a restart; writes are kept only when the poll succeeds, together with
the trigger instances it dispatched. A ``Sensor`` whose ``run()`` runs forever is refused when
the pack is built.
"""

import abc

__all__ = ["Sensor", "PollingSensor"]


class BaseSensor(object, metaclass=abc.ABCMeta):
    """Base class for all the sensors."""

    def __init__(self, sensor_service, config=None):
        self._sensor_service = sensor_service
        self.sensor_service = sensor_service
        self._config = config or {}
        self.config = self._config

    @abc.abstractmethod
    def setup(self):
        """Run the sensor initialization / setup code (if any)."""
        pass

    @abc.abstractmethod
    def run(self):
        """Run the sensor."""
        pass

    @abc.abstractmethod
    def cleanup(self):
        """Run the sensor cleanup code (if any)."""
        pass

    @abc.abstractmethod
    def add_trigger(self, trigger):
        """Runs when trigger is created."""
        pass

    @abc.abstractmethod
    def update_trigger(self, trigger):
        """Runs when trigger is updated."""
        pass

    @abc.abstractmethod
    def remove_trigger(self, trigger):
        """Runs when trigger is deleted."""
        pass


class Sensor(BaseSensor):
    """Base class to be inherited from by the passive sensors."""

    @abc.abstractmethod
    def run(self):
        pass


class PollingSensor(BaseSensor):
    """Base class to be inherited from by the active sensors: ``poll()`` is called every
    ``poll_interval`` seconds (the sensor metadata's ``poll_interval``)."""

    def __init__(self, sensor_service, config=None, poll_interval=5):
        super(PollingSensor, self).__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self):
        """Poll 3rd party system for new information."""
        pass

    def run(self):
        self.poll()

    def get_poll_interval(self):
        return self._poll_interval

    def set_poll_interval(self, poll_interval):
        self._poll_interval = poll_interval
