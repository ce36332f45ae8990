"""Squall's stand-in for the parts of StackStorm's ``st2common`` that pack code imports.

Pack actions written for StackStorm's ``python-script`` runner import ``Action`` from
``st2common.runners.base_action`` and sometimes ``st2common.log``,
``st2common.runners.utils``, ``st2common.constants.keyvalue`` and
``st2common.util.isotime``. Those names behave as StackStorm 3.x defines them; everything else
of ``st2common`` (its database, message bus and services) has no meaning inside a component.
"""
