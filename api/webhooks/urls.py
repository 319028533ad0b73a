"""Which URLs a webhook may name: http(s) only, and (unless allowed) no private addresses.

A webhook makes the service send requests where a tenant says; without this check a tenant could
make it call its own network (cloud metadata at 169.254.169.254, Redis on localhost). The host is
resolved and every address it resolves to must be public; the check runs when the endpoint is
made and again when the sender opens a connection, which then goes to the very address checked
(:func:`checked_addresses`): a DNS answer that changes between the check and the connection
(DNS rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

__all__ = ["Resolver", "UnsafeUrl", "check_url", "check_url_syntax", "checked_addresses", "resolve"]

#: host, port -> the addresses it resolves to (IP strings), or OSError
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: A host that takes longer than this to resolve is refused.
RESOLVE_TIMEOUT_S = 5.0


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; the message says why."""


def check_url_syntax(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL, or :class:`UnsafeUrl`.

    >>> check_url_syntax("https://hooks.example.com/dispatch")
    ('hooks.example.com', 443)
    >>> check_url_syntax("ftp://example.com/")
    Traceback (most recent call last):
    ...
    api.webhooks.urls.UnsafeUrl: the URL must start with http:// or https://, not ftp
    """
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


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order (an IP literal: itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = resolve
) -> list[str]:
    """The addresses of ``host`` a webhook may connect to: all of them, or :class:`UnsafeUrl`
    when any is private, loopback or reserved (unless ``allow_private``) or none resolves."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await resolver(host, port)
    except (OSError, TimeoutError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve ({exc or type(exc).__name__})") from None
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    if not allow_private:
        private = sorted({a for a in addresses if _private(a)})
        if private:
            raise UnsafeUrl(
                f"the host {host!r} resolves to a private, loopback or reserved address "
                f"({', '.join(private)}); webhooks go to public addresses only"
            )
    return addresses


async def check_url(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> None:
    """Raise :class:`UnsafeUrl` unless ``url`` is http(s) on a host with only public addresses."""
    host, port = check_url_syntax(url)
    if allow_private:
        return
    await checked_addresses(host, port, allow_private=False, resolver=resolver)
