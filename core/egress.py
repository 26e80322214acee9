"""The egress policy: where the application may connect and which secrets it may send.

A destination or a probe is typed in by a person; without a policy it could send a
secret of this process (`SECRET_KEY`, `DATABASE_URL`) to any host, or read the cloud
metadata address. So:

- credentials come only from environment variables whose names start with an allowed
  prefix (`EGRESS_SECRET_PREFIXES`, default `CC_SECRET_`), or from boto3's default chain
  when no variable is named; an unset and a disallowed variable get the same message,
  so nobody learns which variables exist;
- a host is reached only when the admin's allow-list (`EGRESS_ALLOW`: networks and host
  names) permits it, and every address its name resolves to is checked;
- link-local and metadata addresses are refused unless a listed network lies inside
  them (the admin named them on purpose): a broad `0.0.0.0/0` does not open them.

Pure: the policy, the environment and the resolver are arguments.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

CREDENTIALS_UNAVAILABLE = "credentials not available"
ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local: AWS/GCP/Azure/OpenStack metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches local services
        "::/128",
    )
)


class EgressError(ValueError):
    """A destination, URL or credential the policy does not allow; the message says why
    without naming any variable."""


@dataclass(frozen=True)
class Policy:
    networks: tuple = ()
    hosts: frozenset = frozenset()
    secret_prefixes: tuple = ("CC_SECRET_",)


def parse_allow(text):
    """(networks, host names) from "10.0.0.0/8,pacs.hospital.example,127.0.0.1"."""
    networks, hosts = [], set()
    for item in (part.strip() for part in str(text or "").split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower().rstrip("."))
    return tuple(networks), frozenset(hosts)


def policy_from(allow, prefixes):
    networks, hosts = parse_allow(allow)
    prefixes = tuple(p.strip() for p in prefixes if p and p.strip())
    return Policy(networks, hosts, prefixes)


def current_policy():
    """The policy of this process's settings (EGRESS_ALLOW, EGRESS_SECRET_PREFIXES)."""
    from django.conf import settings

    return policy_from(settings.EGRESS_ALLOW, settings.EGRESS_SECRET_PREFIXES)


# --- credentials ----------------------------------------------------------------------


def secret_name_problem(name, policy):
    """Why a variable name may not hold credentials, or "" when it may."""
    if not name:
        return ""
    if not any(name.startswith(prefix) for prefix in policy.secret_prefixes):
        allowed = " or ".join(policy.secret_prefixes) or "(no prefix is allowed)"
        return f"credential variables must be named {allowed}…"
    return ""


def secret(name, environ, policy):
    """The value of an allowed, set variable; EgressError otherwise, with one message
    for both cases."""
    if secret_name_problem(name, policy) or not environ.get(name):
        raise EgressError(CREDENTIALS_UNAVAILABLE)
    return environ[name]


# --- addresses and URLs ---------------------------------------------------------------


def _normal(address):
    address = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def address_problem(address, policy, host_listed=False):
    """Why connecting to `address` is refused, or "" when allowed. A listed host name
    allows its addresses, except the always-refused ranges."""
    ip = _normal(address)
    refused = [n for n in ALWAYS_REFUSED if n.version == ip.version and ip in n]
    listed = [n for n in policy.networks if n.version == ip.version and ip in n]
    if refused:
        explicit = any(n.subnet_of(r) for n in listed for r in refused)
        return "" if explicit else f"{ip} is a link-local or metadata address"
    if listed or host_listed:
        return ""
    return f"{ip} is not in the egress allow-list"


def resolve(host, port, resolver=socket.getaddrinfo):
    """Every address `host` resolves to (IP literals, decimal forms and names alike)."""
    try:
        found = resolver(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressError(f"cannot resolve {host}") from exc
    return sorted({info[4][0] for info in found})


def check_host(host, port, policy, resolver=socket.getaddrinfo):
    """The resolved addresses of an allowed host; EgressError naming the first refused
    address otherwise. Called right before connecting."""
    if not host:
        raise EgressError("no host")
    name = host.lower().strip("[]").rstrip(".")
    addresses = resolve(name, port, resolver)
    if not addresses:
        raise EgressError(f"cannot resolve {host}")
    for address in addresses:
        problem = address_problem(address, policy, host_listed=name in policy.hosts)
        if problem:
            raise EgressError(f"connection to {host} refused: {problem}")
    return addresses


def check_url(url, policy, resolver=socket.getaddrinfo):
    """Check an http(s) URL's host; refuses other schemes and user:password@ URLs."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressError("only http:// and https:// URLs with a host are allowed")
    if parts.username or parts.password:
        raise EgressError("credentials in a URL are not allowed; name a variable instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EgressError("the URL's port is not a number") from exc
    return check_host(parts.hostname, port, policy, resolver)


def url_problem(url, policy, resolver=socket.getaddrinfo):
    """check_url as a message ("" when allowed), for forms and serializers."""
    try:
        check_url(url, policy, resolver)
    except EgressError as exc:
        return str(exc)
    return ""


def host_problem(host, port, policy, resolver=socket.getaddrinfo):
    try:
        check_host(host, port, policy, resolver)
    except EgressError as exc:
        return str(exc)
    return ""


def mask_url(url):
    """The URL with any user:password@ replaced by ***@, for display."""
    parts = urlsplit(url or "")
    if not (parts.username or parts.password):
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()
