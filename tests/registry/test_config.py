"""Configuration: defaults, the TOML file, `KODOSUMI_REGISTRY_*` overrides, flags, and clear
errors for what is unusable. Credentials: the development CA, a shared CA, given files."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from kodosumi.paths import default_state_dir
from kodosumi.pki import load_certificate, spiffe_id_of
from registryd.config import ConfigError, LeaseConfig, TlsConfig, load_config
from registryd.credentials import ensure_credentials
from tests.registry.conftest import make_pki


def test_defaults(tmp_path: Path) -> None:
    config = load_config(env={})
    assert config.listen == "127.0.0.1:7460"
    assert config.state_dir == default_state_dir() / "registry"
    assert config.insecure is False
    assert config.lease == LeaseConfig()
    assert (config.lease.min_heartbeat_interval, config.lease.max_heartbeat_interval) == (1, 300)


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    path.write_text(
        """
listen = "0.0.0.0:9000"
state_dir = "state"
change_retention = 500

[lease]
restart_grace = 120
ttl_factor = 2.5

[tls]
ca_cert = "pki/ca.pem"
ca_key = "/abs/ca.key"
hosts = ["registry.example", "10.0.0.7"]
"""
    )
    config = load_config(path, env={})
    assert config.listen == "0.0.0.0:9000"
    assert config.state_dir == tmp_path / "state"  # relative to the file
    assert config.change_retention == 500
    assert (config.lease.restart_grace, config.lease.ttl_factor) == (120.0, 2.5)
    assert config.tls.ca_cert == tmp_path / "pki" / "ca.pem"
    assert config.tls.ca_key == Path("/abs/ca.key")
    assert config.tls.hosts == ("registry.example", "10.0.0.7")

    env = {
        "KODOSUMI_REGISTRY_LISTEN": "127.0.0.1:9001",
        "KODOSUMI_REGISTRY_LEASE_RESTART_GRACE": "30",
        "KODOSUMI_REGISTRY_INSECURE": "true",
        "KODOSUMI_REGISTRY_TLS_HOSTS": "a.example, b.example",
    }
    config = load_config(path, env=env)
    assert config.listen == "127.0.0.1:9001"
    assert config.lease.restart_grace == 30.0
    assert config.lease.ttl_factor == 2.5  # the file still counts for the rest
    assert config.insecure is True
    assert config.tls.hosts == ("a.example", "b.example")

    config = load_config(
        path, env=env, listen="127.0.0.1:0", lease__restart_grace=5.0, insecure=None
    )
    assert (config.listen, config.lease.restart_grace, config.insecure) == (
        "127.0.0.1:0",
        5.0,
        True,
    )


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("lisen = 'x'", {}, "unknown key 'lisen'"),
        ("[lease]\nttl = 3", {}, "unknown key 'ttl'"),
        ("lease = 3", {}, "[lease] must be a table"),
        ("change_retention = 'many'", {}, "change_retention"),
        ("insecure = 'maybe'", {}, "not a boolean"),
        ("[lease]\nmin_heartbeat_interval = 10\nmax_heartbeat_interval = 5", {}, "min_heartbeat"),
        ("", {"KODOSUMI_REGISTRY_LEASE_TTL_FACTOR": "lots"}, "KODOSUMI_REGISTRY_LEASE_TTL_FACTOR"),
        ("not toml [", {}, "registry.toml"),
    ],
)
def test_unusable_configuration_is_named(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "registry.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path, env=env)


def test_development_ca_is_created_once(tmp_path: Path) -> None:
    creds = ensure_credentials(tmp_path, "main", TlsConfig())
    assert str(creds.identity) == "spiffe://local.kodosumi/registry/main"
    assert creds.files.ca_cert == tmp_path / "pki" / "ca.pem"
    cert = load_certificate(creds.files.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert creds.client is not None
    assert spiffe_id_of(load_certificate(creds.client.cert)).kind == "user"
    again = ensure_credentials(tmp_path, "main", TlsConfig())
    assert load_certificate(again.files.cert).serial_number == cert.serial_number
    renamed = ensure_credentials(tmp_path, "other", TlsConfig())
    assert str(spiffe_id_of(load_certificate(renamed.files.cert))).endswith("/registry/other")


def test_a_shared_ca_issues_the_registry_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "shared", domain="corp.example")
    tls = TlsConfig(ca_cert=pki.ca_cert, ca_key=pki.ca_key, hosts=("registry.corp.example",))
    creds = ensure_credentials(tmp_path / "state", "main", tls)
    assert creds.trust_domain == "corp.example"
    assert creds.files.ca_cert == pki.ca_cert
    assert creds.client is None
    cert = load_certificate(creds.files.cert)
    cert.verify_directly_issued_by(pki.ca.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "registry.corp.example" in sans.get_values_for_type(x509.DNSName)
    # A certificate of another CA in the state dir is replaced.
    other = make_pki(tmp_path / "other", domain="corp.example")
    moved = ensure_credentials(
        tmp_path / "state", "main", TlsConfig(ca_cert=other.ca_cert, ca_key=other.ca_key)
    )
    load_certificate(moved.files.cert).verify_directly_issued_by(other.ca.cert)


def test_given_certificates_are_used_as_they_are(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    issued = ensure_credentials(
        tmp_path / "a", "main", TlsConfig(ca_cert=pki.ca_cert, ca_key=pki.ca_key)
    )
    tls = TlsConfig(ca_cert=pki.ca_cert, cert=issued.files.cert, key=issued.files.key)
    creds = ensure_credentials(tmp_path / "b", "ignored", tls)
    assert creds.files == issued.files
    assert str(creds.identity).endswith("/registry/main")
    node_cert = tmp_path / "node.pem"
    node_cert.write_bytes(pki.node("n1").cert)
    with pytest.raises(ConfigError, match="not a registry identity"):
        ensure_credentials(
            tmp_path, "x", TlsConfig(ca_cert=pki.ca_cert, cert=node_cert, key=node_cert)
        )


@pytest.mark.parametrize(
    "tls",
    [
        TlsConfig(ca_cert=Path("/nope/ca.pem")),
        TlsConfig(cert=Path("/nope/cert.pem")),
        TlsConfig(ca_cert=Path("/nope/ca.pem"), ca_key=Path("/nope/ca.key")),
    ],
)
def test_incomplete_or_missing_credentials_are_config_errors(
    tmp_path: Path, tls: TlsConfig
) -> None:
    with pytest.raises(ConfigError):
        ensure_credentials(tmp_path, "main", tls)
