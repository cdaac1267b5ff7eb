"""What daemons advertise and the names their certificates carry, derived from the listen
address (kodosumi/addresses.py); a wildcard listen with nothing usable is refused."""

from __future__ import annotations

import socket

import pytest

from kodosumi.addresses import (
    AdvertiseError,
    advertised_endpoints,
    certificate_hosts,
    check_advertisable,
    host_addresses,
    split_host_port,
)

FIX = "pass --advertise HOST:PORT"


def lan() -> list[str]:
    return ["10.213.0.12", "fd00::12"]


def loopback_only() -> list[str]:
    return []


def test_a_specific_listen_address_is_advertised_with_the_bound_port() -> None:
    assert advertised_endpoints("10.0.0.5:0", 7471, (), fix=FIX) == ("10.0.0.5:7471",)
    assert advertised_endpoints("127.0.0.1:7470", 7470, (), fix=FIX) == ("127.0.0.1:7470",)


def test_a_wildcard_listen_advertises_the_hosts_addresses() -> None:
    assert advertised_endpoints("0.0.0.0:7470", 7470, (), fix=FIX, addresses=lan) == (
        "10.213.0.12:7470",
        "[fd00::12]:7470",
    )
    assert advertised_endpoints("[::]:0", 9, (), fix=FIX, addresses=lan)[0] == "10.213.0.12:9"


def test_advertise_wins_and_a_missing_port_is_the_bound_one() -> None:
    given = ("node-a.example", "192.0.2.7:443", "[fd00::1]")
    assert advertised_endpoints("0.0.0.0:0", 7470, given, fix=FIX, addresses=lan) == (
        "node-a.example:7470",
        "192.0.2.7:443",
        "[fd00::1]:7470",
    )


def test_a_wildcard_listen_with_nothing_to_advertise_is_an_error_naming_the_fix() -> None:
    with pytest.raises(AdvertiseError) as error:
        advertised_endpoints("0.0.0.0:7470", 7470, (), fix=FIX, addresses=loopback_only)
    assert "0.0.0.0:7470" in str(error.value) and FIX in str(error.value)
    # An advertised wildcard is no better: nobody can dial it.
    with pytest.raises(AdvertiseError, match="--advertise"):
        check_advertisable("0.0.0.0:7470", ("0.0.0.0:7470",), fix=FIX)
    with pytest.raises(AdvertiseError, match="port"):
        split_host_port("host:http")


def test_certificate_names_cover_loopback_the_host_and_what_is_advertised() -> None:
    dns, ips = certificate_hosts("0.0.0.0:7460", (), ("registry.lan",), addresses=lan)
    assert {"localhost", socket.gethostname(), "registry.lan"} <= set(dns)
    assert {"127.0.0.1", "::1", "10.213.0.12", "fd00::12"} <= set(ips)
    assert "0.0.0.0" not in ips
    dns, ips = certificate_hosts("0.0.0.0:7470", ("node-a.example:7470",), addresses=lan)
    assert "node-a.example" in dns and "10.213.0.12" not in ips  # advertise replaces


def test_host_addresses_never_include_loopback_or_link_local() -> None:
    for address in host_addresses():
        assert not address.startswith(("127.", "fe80")) and address != "::1"


@pytest.mark.parametrize(
    "entry",
    ["a:b:c", "host name:7470", "-bad.example", "x" * 300, "host:0", "host:70000", "[::]:1"],
)
def test_advertising_what_is_no_address_is_refused(entry: str) -> None:
    with pytest.raises(AdvertiseError):
        advertised_endpoints("0.0.0.0:0", 7470, (entry,), fix=FIX, addresses=lan)
