"""The trusted-clients file is checked at start-up; `serve` never runs open by accident."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds_service import create_app
from cds_service.config import ConfigError, from_env
from cds_service.security.auth import serve_config
from cds_service.security.jwks import UrlKeys, load_trusted_clients
from her2cds_cli.cli import build_parser, main
from tests.auth_support import ISS, keys, write_clients
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "trusted-clients.sandbox.json"


def _public_jwk(key: Any, alg: str, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.get_algorithm_by_name(alg).to_jwk(key))
    data["kid"] = kid
    return data


def _bad_entries() -> dict[str, tuple[Any, str]]:
    es_private = _public_jwk(keys().es, "ES384", "p")  # a private JWK (has "d")
    p256 = _public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), "ES256", "p256")
    small_rsa = _public_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), "RS384", "r1"
    )
    good = {"keys": [keys().jwk("es", "ec-1")]}
    return {
        "not a list": ({"iss": ISS, "jwks": good}, "non-empty JSON array"),
        "empty list": ([], "non-empty JSON array"),
        "entry not an object": (["x"], "JSON object"),
        "no iss": ([{"jwks": good}], "needs 'iss'"),
        "no keys": ([{"iss": ISS}], "exactly one of"),
        "two key sources": (
            [{"iss": ISS, "jwks": good, "jwks_url": "https://x.org/j"}],
            "exactly one of",
        ),
        "typo in a field": ([{"iss": ISS, "jwks_uri": "https://x.org/j"}], "unknown field"),
        "jwks not a key set": ([{"iss": ISS, "jwks": [good]}], "not a JWK Set"),
        "private key": ([{"iss": ISS, "jwks": {"keys": [es_private]}}], "private or symmetric"),
        "symmetric key": (
            [{"iss": ISS, "jwks": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}}],
            "private or symmetric",
        ),
        "P-256 key": ([{"iss": ISS, "jwks": {"keys": [p256]}}], "ES384 needs P-384"),
        "small RSA key": ([{"iss": ISS, "jwks": {"keys": [small_rsa]}}], "at least 2048"),
        "key alg HS256": (
            [{"iss": ISS, "jwks": {"keys": [dict(keys().jwk("es", "e"), alg="HS256")]}}],
            "only ES384",
        ),
        "encryption key": (
            [{"iss": ISS, "jwks": {"keys": [dict(keys().jwk("es", "e"), use="enc")]}}],
            "not 'sig'",
        ),
        "duplicate kid": (
            [{"iss": ISS, "jwks": {"keys": [keys().jwk("es", "a"), keys().jwk("rsa", "a")]}}],
            "appears twice",
        ),
        "plain http URL": ([{"iss": ISS, "jwks_url": "http://keys.example.org/j"}], "https"),
        "missing jwks_file": ([{"iss": ISS, "jwks_file": "nope.json"}], "cannot read jwks_file"),
        "bad tenant": ([{"iss": ISS, "jwks": good, "tenant": []}], "'tenant'"),
        "jku not a list": ([{"iss": ISS, "jwks": good, "jku": "https://x.org/j"}], "'jku'"),
        "jku over http": ([{"iss": ISS, "jwks": good, "jku": ["http://x.org/j"]}], "https"),
        "iss twice": ([{"iss": ISS, "jwks": good}, {"iss": ISS, "jwks": good}], "listed twice"),
    }


BAD = list(_bad_entries())


@pytest.mark.parametrize("case", BAD)
def test_bad_trusted_clients_file_is_refused_at_start(tmp_path: Path, case: str) -> None:
    document, hint = _bad_entries()[case]
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        create_app(
            {
                "database_url": f"sqlite:///{tmp_path / 'x.db'}",
                "auth": "required",
                "trusted_clients": str(path),
            }
        )
    assert str(error.value).startswith("HER2CDS_TRUSTED_CLIENTS: ")
    assert hint in str(error.value)
    assert '"d"' not in str(error.value)  # never echoes key material


def test_unreadable_or_invalid_json_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^HER2CDS_TRUSTED_CLIENTS: cannot read"):
        load_trusted_clients(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("[{", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^HER2CDS_TRUSTED_CLIENTS: .* not valid JSON"):
        load_trusted_clients(str(tmp_path / "bad.json"))


def test_auth_required_needs_a_trusted_clients_file() -> None:
    with pytest.raises(ConfigError, match="HER2CDS_TRUSTED_CLIENTS"):
        from_env({"HER2CDS_AUTH": "required"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HER2CDS_JWT_CLOCK_SKEW", "-1"),
        ("HER2CDS_JWT_CLOCK_SKEW", "3600"),
        ("HER2CDS_JWT_MAX_LIFETIME", "10"),
        ("HER2CDS_JWKS_TIMEOUT", "0"),
        ("HER2CDS_PUBLIC_BASE_URL", "cds.example.org"),
    ],
)
def test_auth_settings_are_validated(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        from_env({variable: value})


def test_the_sandbox_example_file_loads_without_fetching(tmp_path: Path) -> None:
    clients = load_trusted_clients(str(EXAMPLE))
    sandbox = clients["https://sandbox.cds-hooks.org"]
    assert isinstance(sandbox.keys, UrlKeys)
    assert sandbox.keys.url == "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    assert sandbox.jku[sandbox.keys.url] is sandbox.keys  # one cache for both
    entry = json.loads(EXAMPLE.read_text(encoding="utf-8"))[0]
    assert "never in production" in entry["description"].lower()


def test_jwks_file_is_relative_to_the_trusted_clients_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ehr.json").write_text(
        json.dumps({"keys": [keys().jwk("rsa", "r")]}), encoding="utf-8"
    )
    path = write_clients(tmp_path / "clients.json", [{"iss": ISS, "jwks_file": "keys/ehr.json"}])
    client = load_trusted_clients(str(path))[ISS]
    found = client.find_key("r", None)
    assert found is not None and found.algorithm == "RS384"


# --- `her2-cds serve`: the authentication default ------------------------------------------


def _serve(env: dict[str, str], *argv: str) -> Any:
    """`her2-cds serve ARGV` with environment ENV: the configuration it would run with."""
    args = build_parser().parse_args(["serve", *argv])
    return serve_config(args.host, auth=args.auth, dev=args.allow_no_auth, env=env)


def test_serve_on_loopback_defaults_to_auth_off() -> None:
    assert _serve({}, "--host", "127.0.0.1").auth == "off"
    assert _serve({}, "--host", "localhost").auth == "off"


def test_serve_on_the_network_requires_auth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _serve({}, "--host", "0.0.0.0")
    assert "HER2CDS_TRUSTED_CLIENTS" in str(error.value) and "--allow-no-auth" in str(error.value)
    env = {"HER2CDS_TRUSTED_CLIENTS": str(EXAMPLE)}
    assert _serve(env, "--host", "0.0.0.0").auth == "required"


def test_serve_refuses_auth_off_on_the_network_without_dev() -> None:
    for argv, env in (
        (("--host", "0.0.0.0"), {"HER2CDS_AUTH": "off"}),
        (("--host", "10.1.2.3", "--auth", "off"), {}),
    ):
        with pytest.raises(ConfigError, match="refusing to serve"):
            _serve(env, *argv)
    assert _serve({}, "--host", "0.0.0.0", "--allow-no-auth").auth == "off"


def test_serve_explicit_choice_wins(tmp_path: Path) -> None:
    env = {"HER2CDS_TRUSTED_CLIENTS": str(EXAMPLE)}
    assert _serve(env, "--host", "127.0.0.1", "--auth", "required").auth == "required"
    env_required = {"HER2CDS_AUTH": "required", **env}
    assert _serve(env_required, "--allow-no-auth").auth == "required"


def test_serve_reads_the_address_from_the_environment_when_not_given() -> None:
    with pytest.raises(ConfigError, match=r"required on 0\.0\.0\.0"):
        serve_config(None, env={"HER2CDS_HOST": "0.0.0.0"})
    assert serve_config(None, env={}).auth == "off"  # default address: 127.0.0.1


def test_serve_warns_when_dev_leaves_the_network_open(capsys: pytest.CaptureFixture[str]) -> None:
    _serve({}, "--host", "0.0.0.0", "--allow-no-auth")
    assert "client authentication is OFF" in capsys.readouterr().err
    _serve({}, "--host", "127.0.0.1")  # the loopback default for trying it: no alarm
    _serve({"HER2CDS_TRUSTED_CLIENTS": str(EXAMPLE)}, "--host", "0.0.0.0")
    assert capsys.readouterr().err == ""


def test_serve_checks_the_trusted_clients_file_before_starting(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[]", encoding="utf-8")
    env = {"HER2CDS_TRUSTED_CLIENTS": str(tmp_path / "bad.json")}
    with pytest.raises(ConfigError, match="HER2CDS_TRUSTED_CLIENTS"):
        _serve(env, "--host", "0.0.0.0")


def test_serve_command_exits_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("HER2CDS_AUTH", "HER2CDS_TRUSTED_CLIENTS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "HER2CDS_TRUSTED_CLIENTS" in err
