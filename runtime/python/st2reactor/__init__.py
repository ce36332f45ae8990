"""Squall's stand-in for the part of StackStorm's ``st2reactor`` that sensor code imports:
``st2reactor.sensor.base`` (``Sensor``, ``PollingSensor``)."""
