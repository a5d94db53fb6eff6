"""The step protocol (docs/step-protocol.md): line-JSON requests on $SLUICE_STEP_SOCKET."""

import os

# What a step's start imports is paid by every try (bench/python_bench.py): the json
# package (its regular expressions) ~11 ms, the socket module (enum) ~5 ms. CPython's C
# modules underneath them do the same work without that; other interpreters get the packages.
try:
    import _json
except ImportError:
    _json = None
try:
    import _socket as socket
except ImportError:
    import socket


class ProtocolError(RuntimeError):
    """The step refused a request (a metric that is not a number, a missing output file)."""


class BadRequest(ValueError):
    """Raised by a served model's predict(rows) for a request that is wrong: the caller gets
    a 400 with its message (docs/python-steps.md#serving)."""


class _Codec:
    """JSON for the protocol's lines: CPython's C scanner and encoder (what the json package
    uses underneath) without the package; the json package when they are missing or behave
    otherwise than it does."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self):
        self.parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                               "NaN": float("nan")}.__getitem__
        self._scan = _json.make_scanner(self)
        sample = {"a": [1, 2.5, "x\n\u00e9", None, True, {"b": False}]}
        if self.loads(self.dumps(sample)) != sample:
            raise ValueError("the C codec does not round-trip")

    def dumps(self, value):
        # A new encoder each time, as json.dumps makes: its circular-reference markers must
        # not outlive a call that raised. allow_nan=False: NaN is not JSON.
        encode = _json.make_encoder({}, _plain, _json.encode_basestring_ascii, None, ":", ",",
                                    False, False, False)
        return "".join(encode(value, 0))

    def loads(self, text):
        try:
            value, end = self._scan(text, 0)
        except StopIteration as stop:
            raise ValueError(f"not JSON at character {stop.value}: {text[:80]!r}") from None
        if text[end:].strip():
            raise ValueError(f"extra data after JSON: {text[end:end + 80]!r}")
        return value


class _PackageCodec:
    def __init__(self):
        import json

        self._json = json

    def dumps(self, value):
        return self._json.dumps(value, allow_nan=False, default=_plain, separators=(",", ":"))

    def loads(self, text):
        return self._json.loads(text)


def _codec():
    if _json is not None:
        try:
            return _Codec()
        except (AttributeError, TypeError, ValueError):
            pass
    return _PackageCodec()


class Channel:
    """One connection to the step's socket; requests are answered in order."""

    def __init__(self, path=None):
        path = path or os.environ.get("SLUICE_STEP_SOCKET")
        if not path:
            raise ProtocolError(
                "not inside a Sluice step: $SLUICE_STEP_SOCKET is not set "
                "(the python and core.shell steps set it; see docs/step-protocol.md)")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._pending = b""
        self._codec = _codec()

    def ask(self, op, **fields):
        """Sends one request and returns its result; raises ProtocolError when refused."""
        fields["op"] = op
        line = self._codec.dumps(fields).encode("utf-8") + b"\n"
        self._sock.sendall(line)
        while b"\n" not in self._pending:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ProtocolError("the step closed its socket (the try is ending)")
            self._pending += chunk
        reply, _, self._pending = self._pending.partition(b"\n")
        answer = self._codec.loads(reply.decode("utf-8"))
        if not answer.get("ok"):
            raise ProtocolError(answer.get("error", "the step refused the request"))
        return answer.get("result")

    def close(self):
        self._sock.close()


def _plain(value):
    """numpy scalars and arrays, paths and sets as JSON."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
