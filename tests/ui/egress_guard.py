"""Imported first in a process under test: every outbound connection and name lookup that is not loopback is
refused and recorded from then on. Attempts are kept in ATTEMPTS and, where MVL_EGRESS_LOG names a file,
appended to it at once (the process may be killed rather than exit)."""

import os
import socket

ATTEMPTS: list[str] = []
_connect, _connect_ex, _lookup = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _record(host) -> None:
    ATTEMPTS.append(str(host))
    if os.environ.get("MVL_EGRESS_LOG"):
        with open(os.environ["MVL_EGRESS_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{host}\n")


def _loopback(host) -> bool:
    return str(host) in ("localhost", "::1") or str(host).startswith("127.")


def _guard(sock, address):
    if sock.family != socket.AF_UNIX and isinstance(address, tuple) and not _loopback(address[0]):
        _record(address[0])
        raise OSError(f"blocked: {address}")


def _getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        _record(host)
        raise socket.gaierror(f"blocked: {host}")
    return _lookup(host, *args, **kwargs)


socket.socket.connect = lambda s, a: _guard(s, a) or _connect(s, a)
socket.socket.connect_ex = lambda s, a: _guard(s, a) or _connect_ex(s, a)
socket.getaddrinfo = _getaddrinfo
