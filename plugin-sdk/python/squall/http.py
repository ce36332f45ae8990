"""Outbound HTTP over ``wasi:http``, under the pack's grants (``capabilities.http`` in
``pack.yaml`` and the operator's ``[packs.<pack>] http_allow``); TLS is the host's, to the
system CA set. A refused destination raises :class:`HttpError` with ``code``
``"HttpRequestDenied"`` (or ``"DestinationIpProhibited"``), and the host records the denial
in the execution.

``request(method, url, headers=None, body=None, json=None, timeout=None)`` and ``get``,
``post``, ``put``, ``patch``, ``delete`` return a :class:`Response` once the whole body is
read. ``timeout`` is seconds for connecting and for each wait on the response (default: the
host's).
"""

import json as _json

import squall_http as _carrier

HttpError = _carrier.HTTPError

__all__ = ["HttpError", "Response", "request", "get", "post", "put", "patch", "delete"]


class Response(object):
    """An HTTP response: ``status`` (int), ``headers`` (dict, names in lowercase; repeated
    headers joined with ``, ``), ``content`` (bytes), ``text`` (UTF-8, invalid bytes
    replaced) and ``json()``."""

    def __init__(self, status, headers, content):
        self.status = status
        self.headers = {}
        for name, value in headers:
            name = name.lower()
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            self.headers[name] = self.headers[name] + ", " + value if name in self.headers else value
        self.content = content

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return _json.loads(self.content)

    def __repr__(self):
        return "<Response [%d]>" % self.status


def request(method, url, headers=None, body=None, json=None, timeout=None):
    """Sends one request; ``json`` (any JSON value) sets the body and ``content-type``."""
    fields = list((headers or {}).items())
    if json is not None:
        body = _json.dumps(json).encode()
        if not any(k.lower() == "content-type" for k, _ in fields):
            fields.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    status, response_headers, content = _carrier.request(method, url, fields, body, timeout)
    return Response(status, response_headers, content)


def get(url, **kwargs):
    return request("GET", url, **kwargs)


def post(url, **kwargs):
    return request("POST", url, **kwargs)


def put(url, **kwargs):
    return request("PUT", url, **kwargs)


def patch(url, **kwargs):
    return request("PATCH", url, **kwargs)


def delete(url, **kwargs):
    return request("DELETE", url, **kwargs)
