"""The egress policy as pure rules: credential variable names, allowed networks and
hosts, the metadata and link-local ranges, and every resolved address."""

import socket

import pytest

from core import egress

POLICY = egress.policy_from("10.0.0.0/8,127.0.0.1,pacs.hospital.example", ["CC_SECRET_"])
BROAD = egress.policy_from("0.0.0.0/0,::/0", ["CC_SECRET_"])


def resolver_for(table):
    """A stand-in DNS: name -> addresses (pure logic; the real resolver is used below)."""

    def resolve(host, port, proto=0):
        if host not in table:
            raise socket.gaierror("unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]

    return resolve


def test_a_variable_without_the_allowed_prefix_is_refused_like_an_unset_one():
    environ = {"SECRET_KEY": "django-secret", "CC_SECRET_S3": "key"}
    assert egress.secret("CC_SECRET_S3", environ, POLICY) == "key"
    messages = set()
    for name in ("SECRET_KEY", "DATABASE_URL", "CC_SECRET_UNSET", "AWS_SECRET_ACCESS_KEY"):
        with pytest.raises(egress.EgressError) as refused:
            egress.secret(name, environ, POLICY)
        messages.add(str(refused.value))
    assert messages == {"credentials not available"}


def test_a_variable_name_is_checked_against_the_configured_prefixes():
    assert egress.secret_name_problem("SECRET_KEY", POLICY)
    assert not egress.secret_name_problem("CC_SECRET_PACS", POLICY)
    other = egress.policy_from("", ["HOSPITAL_"])
    assert egress.secret_name_problem("CC_SECRET_PACS", other)
    assert not egress.secret_name_problem("HOSPITAL_S3", other)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",  # the same address as one decimal number
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://0.0.0.0:8000/",
    ],
)
def test_metadata_and_link_local_addresses_are_refused_even_under_a_broad_allow_list(url):
    with pytest.raises(egress.EgressError, match="link-local or metadata"):
        egress.check_url(url, BROAD)


def test_the_metadata_address_is_reachable_only_when_listed_on_purpose():
    listed = egress.policy_from("169.254.169.254/32", [])
    assert egress.check_url("http://169.254.169.254/", listed) == ["169.254.169.254"]


def test_hosts_and_networks_outside_the_allow_list_are_refused():
    assert egress.check_url("http://10.1.2.3:8042/dicom-web", POLICY) == ["10.1.2.3"]
    assert egress.check_host("127.0.0.1", 104, POLICY) == ["127.0.0.1"]
    for url in ("http://192.168.1.5/", "https://elsewhere.example/", "ftp://10.0.0.1/"):
        with pytest.raises(egress.EgressError):
            egress.check_url(url, POLICY, resolver_for({"elsewhere.example": ["8.8.8.8"]}))


def test_every_address_a_name_resolves_to_is_checked():
    dns = resolver_for(
        {"mixed.example": ["10.0.0.5", "8.8.8.8"], "pacs.hospital.example": ["192.168.7.7"]}
    )
    with pytest.raises(egress.EgressError, match="8.8.8.8 is not in the egress allow-list"):
        egress.check_host("mixed.example", 443, POLICY, dns)
    assert egress.check_host("pacs.hospital.example", 104, POLICY, dns) == ["192.168.7.7"]
    sneaky = resolver_for({"pacs.hospital.example": ["169.254.169.254"]})
    with pytest.raises(egress.EgressError, match="metadata"):
        egress.check_host("pacs.hospital.example", 80, POLICY, sneaky)


def test_urls_with_credentials_are_refused_and_masked_for_display():
    with pytest.raises(egress.EgressError, match="credentials in a URL"):
        egress.check_url("http://user:pw@10.0.0.1/", POLICY)
    assert (
        egress.mask_url("https://user:pw@host.example:8443/x") == "https://***@host.example:8443/x"
    )
    assert egress.mask_url("https://host.example/x") == "https://host.example/x"


def test_nothing_is_allowed_by_an_empty_allow_list():
    with pytest.raises(egress.EgressError):
        egress.check_host("127.0.0.1", 80, egress.policy_from("", ["CC_SECRET_"]))
