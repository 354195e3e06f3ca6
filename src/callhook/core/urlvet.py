"""Webhook URL vetting: parse, normalize and refuse URLs and addresses we must never call.

Pure: no I/O, no DNS. The I/O half (resolving a name and vetting every address it resolves
to) is :mod:`callhook.delivery.resolver`, which uses :func:`address_problem` from here.

Contracts
---------
* :func:`parse_webhook_url` accepts only absolute ``https://`` URLs (``http://`` too when
  ``allow_unsafe``), returns a normalized :class:`WebhookURL`, and raises
  :class:`callhook.errors.UnsafeURL` (and nothing else) with a message fit for the customer.
* A host that is an IP address in *any* spelling (dotted quad, ``inet_aton`` decimal, octal,
  hex and short forms, bracketed IPv6, full-width digits that IDNA maps to ASCII) is decoded
  to the address it really means, vetted, and written back in canonical form, so the URL we
  store is the URL we call.
* :func:`address_problem` judges an address against a fixed table of networks, not against
  the standard library's ``is_private``/``is_global`` flags, which get several of these wrong
  (``::ffff:127.0.0.1`` is not ``is_loopback``, ``100.100.100.200`` is not ``is_private``,
  NAT64 and 6to4 forms of ``169.254.169.254`` are ``is_global``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import idna

from callhook.errors import UnsafeURL

__all__ = ["MAX_URL_LENGTH", "WebhookURL", "address_problem", "parse_webhook_url"]

MAX_URL_LENGTH = 2048

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class WebhookURL:
    """A parsed, normalized webhook URL.

    ``url`` is the normalized form to store and to request: lowercase scheme and host, IDNA
    (punycode) host, canonical IP literals (IPv6 in brackets), no default port, no trailing
    dot on the host, path ``/`` when empty. ``host`` is the bare host (IPv6 without brackets);
    ``port`` is the effective port; ``literal_ip`` is the address when the host is an IP
    literal, else ``None``.
    """

    url: str
    scheme: str
    host: str
    port: int
    literal_ip: IPv4Address | IPv6Address | None


# --- Address vetting ---------------------------------------------------------------------

_V4 = IPv4Network
_V6 = IPv6Network

# Checked in order; the first match gives the reason. Single addresses with a more specific
# story (cloud metadata) come before the network that contains them.
_IPV4_TABLE: tuple[tuple[IPv4Network, str], ...] = (
    (_V4("0.0.0.0/32"), "unspecified address"),
    (_V4("0.0.0.0/8"), "'this network' address (0.0.0.0/8)"),
    (_V4("10.0.0.0/8"), "private address"),
    (_V4("100.100.100.200/32"), "carrier-grade NAT address (cloud metadata)"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT address"),
    (_V4("127.0.0.0/8"), "loopback address"),
    (_V4("169.254.169.254/32"), "link-local address (cloud metadata)"),
    (_V4("169.254.0.0/16"), "link-local address"),
    (_V4("172.16.0.0/12"), "private address"),
    (_V4("192.0.0.192/32"), "reserved address (cloud metadata)"),
    (_V4("192.0.0.0/24"), "reserved address (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "documentation address"),
    (_V4("192.88.99.0/24"), "reserved address (6to4 relay anycast)"),
    (_V4("192.168.0.0/16"), "private address"),
    (_V4("198.18.0.0/15"), "benchmarking address"),
    (_V4("198.51.100.0/24"), "documentation address"),
    (_V4("203.0.113.0/24"), "documentation address"),
    (_V4("224.0.0.0/4"), "multicast address"),
    (_V4("255.255.255.255/32"), "broadcast address"),
    (_V4("240.0.0.0/4"), "reserved address"),
    # Publicly numbered, but only meaningful from inside Azure (WireServer / metadata).
    (_V4("168.63.129.16/32"), "cloud platform address (cloud metadata)"),
)

# Networks whose addresses embed an IPv4 address; handled before the plain IPv6 table.
_V4_MAPPED = _V6("::ffff:0:0/96")
_V4_COMPATIBLE = _V6("::/96")
_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")
_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_SIX_TO_FOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")
_GLOBAL_UNICAST = _V6("2000::/3")

_IPV6_TABLE: tuple[tuple[IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified address"),
    (_V6("::1/128"), "loopback address"),
    (_V6("fc00::/7"), "IPv6 unique local address"),
    (_V6("fe80::/10"), "link-local address"),
    (_V6("fec0::/10"), "IPv6 site-local address"),
    (_V6("ff00::/8"), "multicast address"),
    (_V6("2001:db8::/32"), "documentation address"),
    (_V6("3fff::/20"), "documentation address"),
    (_V6("2001:2::/48"), "benchmarking address"),
    (_V6("2001::/23"), "reserved address (IETF protocol assignments)"),
    (_V6("100::/64"), "discard-only address"),
)


def _v4_problem(ip: IPv4Address) -> str | None:
    for network, reason in _IPV4_TABLE:
        if ip in network:
            return reason
    return None


def _embedded(kind: str, inner: IPv4Address) -> str | None:
    problem = _v4_problem(inner)
    return None if problem is None else f"{kind} embedding {inner} ({problem})"


def _v6_problem(ip: IPv6Address) -> str | None:
    bits = int(ip)
    low32 = IPv4Address(bits & 0xFFFFFFFF)
    # Unspecified and loopback sit inside ::/96, so the fixed table comes first for those two.
    if ip in _IPV6_TABLE[0][0]:
        return _IPV6_TABLE[0][1]
    if ip in _IPV6_TABLE[1][0]:
        return _IPV6_TABLE[1][1]
    if ip in _V4_MAPPED:
        # A dual-stack socket sends ::ffff:a.b.c.d to a.b.c.d over IPv4: judge the IPv4.
        return _embedded("IPv4-mapped address", low32)
    if ip in _V4_COMPATIBLE:
        # Deprecated (RFC 4291) and never routable; name the embedded address when it is bad.
        return _embedded("IPv4-compatible address", low32) or "IPv4-compatible address"
    if ip in _NAT64_WELL_KNOWN:
        # DNS64 on an IPv6-only network legitimately answers 64:ff9b::<public IPv4>.
        return _embedded("NAT64 address", low32)
    if ip in _NAT64_LOCAL:
        # RFC 8215 local-use prefix: the operator picks the prefix length, so we cannot know
        # where the IPv4 sits and it is not globally routable anyway. Refuse it all; name the
        # /96 embedding when that one is bad.
        return _embedded("NAT64 address", low32) or "local-use NAT64 address"
    if ip in _SIX_TO_FOUR:
        return _embedded("6to4 address", IPv4Address((bits >> 80) & 0xFFFFFFFF))
    if ip in _TEREDO:
        server = IPv4Address((bits >> 64) & 0xFFFFFFFF)
        # RFC 4380: the client's IPv4 is stored bit-inverted in the last 32 bits.
        client = IPv4Address((bits & 0xFFFFFFFF) ^ 0xFFFFFFFF)
        return _embedded("Teredo address", client) or _embedded("Teredo address", server)
    for network, reason in _IPV6_TABLE[2:]:
        if ip in network:
            return reason
    if ip not in _GLOBAL_UNICAST:
        return "reserved IPv6 address (not global unicast)"
    return None


def address_problem(ip: IPv4Address | IPv6Address) -> str | None:
    """Why ``ip`` must not be called, or ``None`` when it is publicly routable.

    The reason is short and safe to show (``"loopback address"``, ``"private address"``,
    ``"link-local address (cloud metadata)"``, ``"NAT64 address embedding 127.0.0.1
    (loopback address)"`` …). IPv6 forms that carry an IPv4 address (mapped, compatible,
    NAT64, 6to4, Teredo) are judged by the IPv4 they carry. An IPv6 zone (``%eth0``) is
    ignored: the address itself is judged.
    """
    if isinstance(ip, IPv4Address):
        return _v4_problem(ip)
    # Drop any scope id so network membership is computed on the bare 128 bits.
    return _v6_problem(IPv6Address(int(ip)))


# --- URL parsing ------------------------------------------------------------------------

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_HEX_PART_RE = re.compile(r"0[xX][0-9A-Fa-f]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Names that only ever mean "this machine" or "this private network" (RFC 6761, RFC 6762
# appendix G, RFC 8375, cloud metadata names). A name under one of them is refused outright;
# everything else is vetted by the addresses it resolves to.
_PRIVATE_SUFFIXES = (
    "localhost",
    "localdomain",
    "local",
    "internal",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "home.arpa",
)


def _refuse(message: str) -> UnsafeURL:
    return UnsafeURL(message)


def _has_bad_char(text: str) -> bool:
    for ch in text:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return True
    return False


def _parse_ipv4_part(part: str) -> int | None:
    """One ``inet_aton`` component: ``0x``-prefixed hex, ``0``-prefixed octal, or decimal."""
    if _HEX_PART_RE.fullmatch(part):
        return int(part[2:], 16) if len(part) > 2 else 0
    if not part.isascii() or not part.isdigit():
        return None
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if all(c in "01234567" for c in part) else None
    return int(part)


def _looks_numeric(label: str) -> bool:
    """The WHATWG "ends in a number" test for a host's last label."""
    return (label.isascii() and label.isdigit()) or bool(_HEX_PART_RE.fullmatch(label))


def _parse_ipv4_literal(host: str) -> IPv4Address | None:
    """Decode every ``inet_aton`` spelling: ``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``.

    Returns ``None`` when the host is not numeric at all (a name). Raises :class:`UnsafeURL`
    when it is numeric but does not decode, so no resolver ever gets to guess what it means.
    """
    parts = host.split(".")
    if not _looks_numeric(parts[-1]):
        return None
    values = [_parse_ipv4_part(p) for p in parts]
    if len(parts) > 4 or any(v is None for v in values):
        raise _refuse("Webhook URL host looks like an IP address but is not a valid one.")
    nums = [v for v in values if v is not None]
    # Every leading part is one byte; the last part fills the remaining bytes.
    last_bits = 8 * (5 - len(nums))
    if any(n > 0xFF for n in nums[:-1]) or nums[-1] >= 1 << last_bits:
        raise _refuse("Webhook URL host looks like an IP address but is out of range.")
    value = nums[-1]
    for index, n in enumerate(nums[:-1]):
        value |= n << (24 - 8 * index)
    return IPv4Address(value)


def _split_authority(authority: str) -> tuple[str, str | None, bool]:
    """``host[:port]`` → (host, port text or ``None``, whether the host was bracketed)."""
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            raise _refuse("Webhook URL has an unterminated IPv6 address ('[' without ']').")
        host, rest = authority[1:end], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _refuse("Webhook URL has unexpected text after the IPv6 address.")
        return host, (rest[1:] if rest else None), True
    if "]" in authority:
        raise _refuse("Webhook URL host is not valid.")
    host, colon, port = authority.partition(":")
    if ":" in port:
        raise _refuse("Webhook URL host is not valid (IPv6 addresses must be in brackets).")
    return host, (port if colon else None), False


def _parse_port(text: str | None, scheme: str) -> int:
    if text is None:
        return _DEFAULT_PORTS[scheme]
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not 0 < int(text) <= 65535:
        raise _refuse("Webhook URL has an invalid port (use a number from 1 to 65535).")
    return int(text)


def _encode_hostname(host: str) -> str:
    """Lowercase + IDNA (UTS #46, as yarl/aiohttp do). Raises UnsafeURL when not encodable."""
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (UnicodeError, ValueError) as exc:
        raise _refuse("Webhook URL host is not a valid domain name.") from exc


def _check_hostname(name: str, *, allow_unsafe: bool) -> None:
    if len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in name.split(".")):
        raise _refuse("Webhook URL host is not a valid domain name.")
    if allow_unsafe:
        return
    for suffix in _PRIVATE_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            raise _refuse(f"Webhook URL host '{name}' is a local or internal name.")
    if "." not in name:
        # Single-label names only resolve through search domains or /etc/hosts: internal.
        raise _refuse(
            f"Webhook URL host '{name}' is not a public domain name "
            "(use a fully qualified name like hooks.example.com)."
        )


def _vet_literal(ip: IPAddress, *, allow_unsafe: bool) -> None:
    if allow_unsafe:
        return
    problem = address_problem(ip)
    if problem is not None:
        raise _refuse(
            f"Webhook URL points to a non-public address: {problem}. "
            "Webhooks can only be delivered to publicly routable addresses."
        )


def parse_webhook_url(url: str, *, allow_unsafe: bool = False) -> WebhookURL:
    """Parse, normalize and vet a webhook URL without any I/O.

    Raises :class:`callhook.errors.UnsafeURL` (never anything else) when the URL is empty or
    longer than 2048 characters, contains whitespace or control characters, is not
    ``http(s)``, is ``http`` without ``allow_unsafe`` (``"Webhook URLs must use HTTPS."``),
    has no host, has userinfo (``user:pass@``), a bad port or a fragment; or when the host is
    an IP literal in any spelling whose address :func:`address_problem` refuses, or a local
    name (single label, ``localhost``, ``*.local``, ``*.internal`` …). ``allow_unsafe``
    (development only) lifts the scheme, address and name refusals, never the syntax ones.

    A host *name* is not resolved here: :func:`callhook.delivery.resolver.check_url` and the
    :class:`~callhook.delivery.resolver.VettingResolver` vet what it resolves to.
    """
    if not isinstance(url, str) or not url:
        raise _refuse("Webhook URL is empty.")
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"Webhook URL is longer than {MAX_URL_LENGTH} characters.")
    if _has_bad_char(url):
        raise _refuse("Webhook URL must not contain spaces or control characters.")

    match = _SCHEME_RE.match(url)
    if match is None:
        raise _refuse("Webhook URL must be absolute, like https://hooks.example.com/callhook.")
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refuse("Webhook URLs must use HTTPS.")
    if scheme == "http" and not allow_unsafe:
        raise _refuse("Webhook URLs must use HTTPS.")
    rest = url[match.end() :]
    if not rest.startswith("//"):
        raise _refuse("Webhook URL must be absolute, like https://hooks.example.com/callhook.")
    if "#" in rest:
        raise _refuse("Webhook URL must not contain a fragment ('#...').")

    # The authority ends at the first '/', '?' (or '\\', which browsers read as '/'; refusing
    # it inside the authority leaves no room for parsers to disagree about the host).
    body = rest[2:]
    end = len(body)
    for sep in "/?":
        pos = body.find(sep)
        if pos != -1:
            end = min(end, pos)
    authority, path_query = body[:end], body[end:]
    if "@" in authority:
        raise _refuse("Webhook URL must not contain a user name or password ('user:pass@').")
    if "\\" in authority or "%" in authority:
        raise _refuse("Webhook URL host is not valid.")

    raw_host, port_text, bracketed = _split_authority(authority)
    if not raw_host:
        raise _refuse("Webhook URL has no host.")
    port = _parse_port(port_text, scheme)

    literal: IPAddress | None
    if bracketed:
        try:
            literal = IPv6Address(raw_host)
        except ValueError as exc:
            raise _refuse("Webhook URL has an invalid IPv6 address in brackets.") from exc
        host = literal.compressed
    else:
        encoded = _encode_hostname(raw_host)
        # One trailing dot marks a fully qualified name; it must not smuggle "localhost." or
        # "127.0.0.1." past the checks, so it is dropped before them (and from the URL).
        if encoded.endswith("."):
            encoded = encoded[:-1]
        if not encoded:
            raise _refuse("Webhook URL has no host.")
        # After IDNA mapping: full-width digits and ideographic dots have become ASCII.
        literal = _parse_ipv4_literal(encoded)
        host = str(literal) if literal is not None else encoded
        if literal is None:
            _check_hostname(host, allow_unsafe=allow_unsafe)

    if literal is not None:
        _vet_literal(literal, allow_unsafe=allow_unsafe)

    url_host = f"[{host}]" if isinstance(literal, IPv6Address) else host
    port_part = "" if port == _DEFAULT_PORTS[scheme] else f":{port}"
    if not path_query.startswith("/"):
        path_query = "/" + path_query
    return WebhookURL(
        url=f"{scheme}://{url_host}{port_part}{path_query}",
        scheme=scheme,
        host=host,
        port=port,
        literal_ip=literal,
    )
