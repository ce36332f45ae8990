"""``st2common.util.isotime`` as StackStorm's, over the standard library (StackStorm's uses
dateutil for the same formats)."""

import datetime
import re

__all__ = ["get_datetime_utc_now", "add_utc_tz", "format", "validate", "parse"]

ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%S"
ISO8601_FORMAT_MICROSECOND = "%Y-%m-%dT%H:%M:%S.%f"
ISO8601_UTC_REGEX = (
    r"^\d{4}\-\d{2}\-\d{2}(\s|T)\d{2}:\d{2}:\d{2}(\.\d{3,6})?(Z|\+00|\+0000|\+00:00)$"
)


def get_datetime_utc_now():
    """The current time, UTC, with its timezone."""
    return datetime.datetime.now(datetime.timezone.utc)


def add_utc_tz(dt):
    return dt.replace(tzinfo=datetime.timezone.utc)


def format(dt, usec=True, offset=True):
    if isinstance(dt, str):
        dt = parse(dt)
    fmt = ISO8601_FORMAT_MICROSECOND if usec else ISO8601_FORMAT
    if offset:
        ost = dt.strftime("%z")
        ost = (ost[:3] + ":" + ost[3:]) if ost else "+00:00"
    else:
        tz = dt.tzinfo.tzname(dt) if dt.tzinfo else "UTC"
        ost = "Z" if tz == "UTC" else tz
    return dt.strftime(fmt) + ost


def validate(value, raise_exception=True):
    if isinstance(value, datetime.datetime) or (
        isinstance(value, str) and re.match(ISO8601_UTC_REGEX, value)
    ):
        return True
    if raise_exception:
        raise ValueError("Datetime value does not match expected format.")
    return False


def parse(value):
    validate(value, raise_exception=True)
    if isinstance(value, datetime.datetime):
        dt = value
    else:
        text = str(value).replace(" ", "T", 1)
        text = re.sub(r"(\+00|\+0000)$", "+00:00", text)
        dt = datetime.datetime.fromisoformat(text)
    return dt if dt.tzinfo else add_utc_tz(dt)
