"""The python step's fork server (plugins/python/fork_server.cc, docs/python-steps.md).

A worker starts one interpreter with the SDK imported and forks it for each try, so that a
try pays neither the interpreter's start (~10 ms) nor the SDK's imports. The forked child
returns from serve() with the try's argv and then runs exactly what a fresh
`python -c "...main(sys.argv)" SCRIPT FUNCTION` would, and ends the way such an interpreter
ends (atexit handlers, flushed files, its exit code).

The worker talks to the server on fd 3, a stream socket:
  worker -> server  a 4-byte little-endian length, then JSON {"argv", "env", "cwd"}; the
                    try's stdout and stderr ride on the first byte (SCM_RIGHTS)
  server -> worker  "P <pid>\\n" once the child is forked (or "E <why>\\n"), then
                    "S <wait status>\\n" once it has ended
End of file on fd 3 (the worker is gone) ends the server.
"""

import os
import sys

try:  # the socket module's import (enum) is not needed for this
    import _socket as socket
except ImportError:
    import socket

from sluice import _run  # noqa: F401 - imported here so that every forked try has it
from sluice import Context, Skip  # noqa: F401
from sluice._protocol import _codec

_CODEC = _codec()


def _read_exactly(ctl, n, first):
    data = bytearray(first)
    while len(data) < n:
        chunk = ctl.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _receive(ctl):
    """The next request and its file descriptors, or (None, []) at end of file."""
    head, ancillary, _, _ = ctl.recvmsg(4, socket.CMSG_SPACE(2 * 4))
    fds = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds += [int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, usable, 4)]
    if not head:
        return None, fds
    head = _read_exactly(ctl, 4, head)
    if head is None:
        return None, fds
    body = _read_exactly(ctl, int.from_bytes(head, "little"), b"")
    if body is None:
        return None, fds
    return _CODEC.loads(body.decode("utf-8")), fds


def _send(ctl, text):
    ctl.sendall(text.encode("utf-8"))


def _become(request, fds):
    """In the forked child: the try's stdio, folder, environment and argv."""
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    for entry in request["env"]:
        name, _, value = entry.partition("=")
        if name:
            os.environ[name] = value
    sys.argv = list(request["argv"])
    return sys.argv


def serve():
    """Forks a child per request; returns only in a child, with the try's argv."""
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, 3)
    while True:
        try:
            request, fds = _receive(ctl)
        except (OSError, ValueError):
            os._exit(0)
        if request is None or len(fds) != 2 or not os.path.isdir(request.get("cwd", "")):
            for fd in fds:
                os.close(fd)
            if request is None:
                os._exit(0)
            _send(ctl, "E bad request or no such folder\n")
            continue
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds:
                os.close(fd)
            _send(ctl, f"E cannot fork: {e.strerror}\n")
            continue
        if pid == 0:
            ctl.close()
            try:
                return _become(request, fds)
            except BaseException as e:  # noqa: B902 - whatever it is, this child is done
                os.write(2, f"sluice: cannot set up the try: {e}\n".encode())
                os._exit(127)
        for fd in fds:
            os.close(fd)
        try:
            _send(ctl, f"P {pid}\n")
            _, status = os.waitpid(pid, 0)
            _send(ctl, f"S {status}\n")
        except OSError:  # the worker is gone; the try goes on without it, as a spawned one would
            os._exit(0)
