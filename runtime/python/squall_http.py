"""Outbound HTTP for Python content, carried over ``wasi:http/outgoing-handler``.

A component has no sockets: every request goes to the host, which checks it against the pack's
``http_allow`` grant (a refusal is ``ErrorCode_HttpRequestDenied``, recorded with the
execution's denials) and makes the connection itself, TLS included. This module is the one
place Python code reaches it; ``install()`` puts it under the standard library's
``http.client`` (so ``urllib.request`` and everything built on ``http.client`` use it) and
under ``requests`` (its ``HTTPAdapter.send``) and under botocore (its
``URLLib3Session.send``, so boto3 and every AWS SDK call goes the same way); pyodide-http
patches the same places for the same reason.
"""

import http.client
import io
import urllib.parse

from componentize_py_types import Err
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import types as t

__all__ = ["request", "HTTPError", "install"]

# Bytes written to an output stream per call (wasi:io allows 4096 per blocking write).
_WRITE_CHUNK = 4096
# Bytes asked for per read.
_READ_CHUNK = 64 * 1024

# Headers the host sets itself or wasi:http refuses from a guest (hop-by-hop ones).
_HOST_SET = {
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "proxy-connection",
    "te",
    "http2-settings",
}

_METHODS = {
    "GET": t.Method_Get,
    "HEAD": t.Method_Head,
    "POST": t.Method_Post,
    "PUT": t.Method_Put,
    "DELETE": t.Method_Delete,
    "CONNECT": t.Method_Connect,
    "OPTIONS": t.Method_Options,
    "TRACE": t.Method_Trace,
    "PATCH": t.Method_Patch,
}


class HTTPError(OSError):
    """A request the host could not make: refused by the pack's grants, the destination not
    reachable, a timeout. ``code`` is the ``wasi:http`` error-code's name, e.g.
    ``HttpRequestDenied``."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def _error(url, code):
    name = type(code).__name__.replace("ErrorCode_", "")
    detail = getattr(code, "value", None)
    if name == "HttpRequestDenied":
        message = (
            "request to %s denied by the host: destination not granted to this pack "
            "(squall.toml [packs.<pack>] http_allow)" % url
        )
    elif name == "DestinationIpProhibited":
        message = (
            "request to %s denied by the host: the address is loopback, private or link-local "
            "and not granted explicitly" % url
        )
    else:
        message = "request to %s failed: %s%s" % (url, name, ": %s" % (detail,) if detail else "")
    return HTTPError(message, name)


def request(method, url, headers=(), body=None, timeout=None):
    """Sends one request and reads the whole response.

    ``headers`` is a list of ``(name, value)`` (str or bytes values); ``body`` bytes or None;
    ``timeout`` seconds for the connection and for each wait on the response (None: the
    host's). Returns ``(status, [(name, bytes)], body bytes)``; raises :class:`HTTPError`.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise HTTPError("unsupported URL scheme %r in %s" % (parts.scheme, url), "HttpRequestUriInvalid")
    # A method that carries a body gets `content-length: 0` rather than an empty chunked body
    # (as requests sends it; some servers refuse chunked uploads).
    if body is None and method.upper() in ("POST", "PUT", "PATCH"):
        body = b""
    fields = []
    for name, value in headers:
        if name.lower() in _HOST_SET:
            continue
        if isinstance(value, str):
            value = value.encode("latin-1")
        fields.append((name, value))
    if body is not None:
        fields.append(("content-length", str(len(body)).encode()))
    try:
        return _send(method, url, parts, fields, body, timeout)
    except Err as e:
        # A header or an authority wasi:http refuses, a stream that failed: the caller gets
        # the one exception type this module raises.
        raise HTTPError("request to %s failed: %s" % (url, e.value), "HttpProtocolError")


def _send(method, url, parts, fields, body, timeout):
    req = t.OutgoingRequest(t.Fields.from_list(fields))
    verb = method.upper()
    req.set_method(_METHODS[verb]() if verb in _METHODS else t.Method_Other(verb))
    req.set_scheme(t.Scheme_Https() if parts.scheme == "https" else t.Scheme_Http())
    req.set_authority(parts.netloc.rsplit("@", 1)[-1])
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    req.set_path_with_query(path)
    options = None
    if timeout is not None:
        options = t.RequestOptions()
        nanos = int(float(timeout) * 1e9)
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)
    outgoing = req.body()
    try:
        future = outgoing_handler.handle(req, options)
    except Err as e:
        outgoing.__exit__(None, None, None)
        raise _error(url, e.value)
    with future:
        writing = None
        try:
            if body:
                with outgoing.write() as stream:
                    view = memoryview(body)
                    for start in range(0, len(view), _WRITE_CHUNK):
                        stream.blocking_write_and_flush(bytes(view[start : start + _WRITE_CHUNK]))
        except Err as e:
            # The host may have refused or failed the request while the body was being
            # written (the stream then closes): its verdict, below, says why.
            writing = e
        finally:
            try:
                t.OutgoingBody.finish(outgoing, None)
            except Err as e:
                writing = writing or e
        while True:
            answer = future.get()
            if answer is not None:
                break
            with future.subscribe() as ready:
                ready.block()
    outcome = answer.value
    if isinstance(answer, Err):
        raise HTTPError("request to %s: the response was already taken" % url, "InternalError")
    if isinstance(outcome, Err):
        raise _error(url, outcome.value)
    if writing is not None:
        raise HTTPError("request to %s failed writing its body: %s" % (url, writing.value), "HttpProtocolError")
    response = outcome.value
    with response:
        status = response.status()
        with response.headers() as fields:
            response_headers = fields.entries()
        incoming = response.consume()
        chunks = []
        failed = False
        with incoming.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(_READ_CHUNK))
                except Err as e:
                    failed = not isinstance(e.value, streams.StreamError_Closed)
                    break
        t.IncomingBody.finish(incoming)
        if failed:
            raise HTTPError("request to %s: reading the response failed" % url, "HttpResponseIncomplete")
    return status, response_headers, b"".join(chunks)


class _Replay(object):
    """A socket whose ``makefile`` replays a response, so ``http.client.HTTPResponse`` parses
    it as if it came off the wire."""

    def __init__(self, raw):
        self._raw = raw

    def makefile(self, mode, *args, **kwargs):
        return io.BytesIO(self._raw)


def _raw_response(status, headers, body, head=False):
    reason = http.client.responses.get(status, "")
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    for name, value in headers:
        if name.lower() in ("transfer-encoding", "content-length", "connection"):
            continue
        lines.append("%s: %s" % (name, value.decode("latin-1")))
    lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def http_response(status, headers, body, method="GET"):
    """A genuine ``http.client.HTTPResponse`` (headers parsed by the standard library) for a
    response read by :func:`request`."""
    raw = _raw_response(status, headers, body, head=method.upper() == "HEAD")
    response = http.client.HTTPResponse(_Replay(raw), method=method.upper())
    response.begin()
    return response


_StdlibHTTPConnection = http.client.HTTPConnection


class HTTPConnection(_StdlibHTTPConnection):
    """``http.client.HTTPConnection`` over the host: the request is sent when the response is
    asked for (``request`` or ``putrequest``/``putheader``/``endheaders``/``send``, then
    ``getresponse``). The standard library's class is the base, so its helpers
    (``_get_content_length``, host parsing, ...) stay as they are."""

    default_port = http.client.HTTP_PORT
    scheme = "http"

    def __init__(self, host, port=None, timeout=None, source_address=None, blocksize=8192, **kwargs):
        super().__init__(host, port)
        self.timeout = timeout if isinstance(timeout, (int, float)) else None
        self._reset()

    def _reset(self):
        self._method = None
        self._url = None
        self._headers = []
        self._body = []

    def set_tunnel(self, host, port=None, headers=None):
        raise http.client.HTTPException("proxies (CONNECT tunnels) are not available to components")

    def connect(self):
        pass

    def close(self):
        self._reset()

    def putrequest(self, method, url, skip_host=False, skip_accept_encoding=False):
        self._method = method
        self._url = url

    def putheader(self, header, *values):
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        value = b", ".join(v if isinstance(v, bytes) else str(v).encode("latin-1") for v in values)
        self._headers.append((header, value))

    def endheaders(self, message_body=None, encode_chunked=False):
        if message_body is not None:
            self.send(message_body)

    def send(self, data):
        if hasattr(data, "read"):
            while True:
                chunk = data.read(65536)
                if not chunk:
                    break
                self._body.append(chunk.encode("iso-8859-1") if isinstance(chunk, str) else chunk)
        elif isinstance(data, str):
            self._body.append(data.encode("iso-8859-1"))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self._body.append(bytes(data))
        else:
            for chunk in data:
                self._body.append(chunk.encode("iso-8859-1") if isinstance(chunk, str) else bytes(chunk))

    def request(self, method, url, body=None, headers={}, *, encode_chunked=False):
        self.putrequest(method, url)
        for name, value in headers.items():
            self.putheader(name, value)
        self.endheaders(body)

    def getresponse(self):
        url = self._url or "/"
        if not url.startswith(("http://", "https://")):
            default = self.port == self.default_port
            authority = self.host if default else "%s:%d" % (self.host, self.port)
            url = "%s://%s%s" % (self.scheme, authority, url)
        body = b"".join(self._body) if self._body else None
        method = self._method or "GET"
        headers = self._headers
        self._reset()
        try:
            status, response_headers, content = request(method, url, headers, body, self.timeout)
        except HTTPError as e:
            raise ConnectionRefusedError(str(e)) if e.code == "ConnectionRefused" else e
        return http_response(status, response_headers, content, method)


class HTTPSConnection(HTTPConnection):
    """``http.client.HTTPSConnection`` over the host (TLS is the host's: the system's
    certificate authorities, certificates always verified)."""

    default_port = http.client.HTTPS_PORT
    scheme = "https"

    def __init__(self, host, port=None, key_file=None, cert_file=None, timeout=None,
                 source_address=None, *, context=None, check_hostname=None, blocksize=8192, **kwargs):
        super().__init__(host, port, timeout)


def _urllib3_response(urllib3, method, url, status, headers, content, decode):
    """A ``urllib3.HTTPResponse`` over a body already read (what requests' and botocore's
    adapters expect from urllib3), its ``original_response`` an ``http.client`` one."""
    original = http_response(status, headers, content, method)
    return urllib3.HTTPResponse(
        body=io.BytesIO(content),
        headers=[(n, v.decode("latin-1")) for n, v in headers],
        status=status,
        reason=original.reason,
        preload_content=False,
        decode_content=decode,
        original_response=original,
        request_method=method,
        request_url=url,
    )


def _install_requests():
    try:
        import requests.adapters
        import urllib3
    except ImportError:
        return

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if isinstance(timeout, tuple):
            timeout = max(t for t in timeout if t is not None) if any(timeout) else None
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif hasattr(body, "read"):
            body = body.read()
        elif body is not None and not isinstance(body, bytes):
            body = b"".join(c.encode("utf-8") if isinstance(c, str) else c for c in body)
        try:
            status, headers, content = globals()["request"](
                request.method, request.url, list(request.headers.items()), body, timeout
            )
        except HTTPError as e:
            if e.code in ("ConnectionTimeout", "ConnectionReadTimeout", "HttpResponseTimeout"):
                raise requests.exceptions.Timeout(str(e), request=request)
            raise requests.exceptions.ConnectionError(str(e), request=request)
        response = _urllib3_response(urllib3, request.method, request.url, status, headers, content, True)
        return self.build_response(request, response)

    requests.adapters.HTTPAdapter.send = send


def _install_botocore():
    """botocore drives urllib3's connection pools itself: its ``URLLib3Session.send`` is
    replaced by one sending through :func:`request`, with botocore's own exceptions and
    response type (``AWSResponse`` over a ``urllib3.HTTPResponse``, content not decoded, as
    botocore asks of urllib3). TLS is the host's; botocore's SSL context is never made."""
    try:
        import urllib3
        import urllib3.util.ssl_ as urllib3_ssl
    except ImportError:
        return
    # This Python has no ssl module; urllib3 then leaves out the `ssl` name botocore imports.
    if not hasattr(urllib3_ssl, "ssl"):
        urllib3_ssl.ssl = None
    try:
        import botocore.awsrequest
        import botocore.exceptions as errors
        import botocore.httpsession as httpsession
    except ImportError:
        return

    def send(self, request):
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, bytearray):
            body = bytes(body)
        elif body is not None and not isinstance(body, bytes):
            body = b"".join(c.encode("utf-8") if isinstance(c, str) else c for c in body)
        headers = [
            (n, v.decode("latin-1") if isinstance(v, bytes) else str(v))
            for n, v in request.headers.items()
        ]
        timeout = self._timeout
        if hasattr(self, "_get_request_timeout"):
            timeout = self._get_request_timeout(request) or timeout
        if hasattr(timeout, "read_timeout"):  # a urllib3 Timeout
            timeout = timeout.read_timeout
        if isinstance(timeout, tuple):
            timeout = max(t for t in timeout if t is not None) if any(timeout) else None
        try:
            status, got, content = globals()["request"](
                request.method, request.url, headers, body, timeout
            )
        except HTTPError as e:
            if e.code == "ConnectionTimeout":
                raise errors.ConnectTimeoutError(endpoint_url=request.url, error=e)
            if e.code in ("ConnectionReadTimeout", "HttpResponseTimeout"):
                raise errors.ReadTimeoutError(endpoint_url=request.url, error=e)
            raise errors.EndpointConnectionError(endpoint_url=request.url, error=e)
        raw = _urllib3_response(urllib3, request.method, request.url, status, got, content, False)
        response = botocore.awsrequest.AWSResponse(request.url, status, raw.headers, raw)
        if not request.stream_output:
            response.content
        return response

    httpsession.URLLib3Session.send = send
    httpsession.URLLib3Session._get_ssl_context = lambda self: None


def _no_sockets(*args, **kwargs):
    raise PermissionError(
        "raw sockets are not available to components: the host makes outbound connections "
        "for HTTP only (requests, urllib.request, http.client), under the pack's http_allow "
        "grant in squall.toml"
    )


_NO_SSL = (
    "ssl is not available to components: the host makes TLS connections for HTTP only "
    "(requests, urllib.request, http.client, botocore over wasi:http, to the system CA set), "
    "under the pack's http_allow grant in squall.toml; raw TLS sockets are not"
)


class _NoSsl(object):
    """Makes ``import ssl`` (this Python has neither ``ssl`` nor its C core ``_ssl``) fail
    saying why, as the same ``ModuleNotFoundError`` the missing module raises (so code that
    falls back on it still does)."""

    def find_spec(self, name, path=None, target=None):
        if name in ("ssl", "_ssl"):
            raise ModuleNotFoundError(_NO_SSL, name=name)
        return None


def install():
    """Routes ``http.client`` (hence ``urllib.request``) and ``requests`` through
    :func:`request`, and makes a raw socket connection and ``import ssl`` fail saying so.
    Called once, when the component is built."""
    import socket
    import sys

    if not any(isinstance(f, _NoSsl) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoSsl())
    socket.create_connection = _no_sockets
    socket.socket.connect = _no_sockets
    socket.socket.connect_ex = _no_sockets
    http.client.HTTPConnection = HTTPConnection
    http.client.HTTPSConnection = HTTPSConnection
    # urllib.request's HTTPS handler asks for an ssl context, which the host's TLS makes moot
    # (and this Python has no ssl module).
    http.client._create_https_context = lambda http_version=None: None
    http.client._create_default_https_context = lambda: None
    _install_requests()
    _install_botocore()
