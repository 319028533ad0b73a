"""Which URLs a webhook may name: http(s) only, and (unless allowed) no private addresses.

A webhook makes the service send requests where a tenant says; without this check a tenant could
make it call its own network (cloud metadata at 169.254.169.254, Redis on localhost). The host is
resolved and every address it resolves to must be public; the check runs when the endpoint is
made and again before each delivery, since DNS answers change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["UnsafeUrl", "check_url", "check_url_syntax"]


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; the message says why."""


def check_url_syntax(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL, or :class:`UnsafeUrl`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(f"the URL must start with http:// or https://, not {parts.scheme or 'nothing'}")
    if not parts.hostname:
        raise UnsafeUrl("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the URL may not hold a user name or password; sign requests with the secret")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeUrl` unless ``url`` is http(s) on a host with only public addresses."""
    host, port = check_url_syntax(url)
    if allow_private:
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), 5)
    except (OSError, TimeoutError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve ({exc})") from None
    private = sorted({str(info[4][0]) for info in infos if _private(str(info[4][0]))})
    if private:
        raise UnsafeUrl(
            f"the host {host!r} resolves to a private, loopback or reserved address ({', '.join(private)}); "
            "webhooks go to public addresses only"
        )
