"""`her2-cds export` with SMART Backend Services: the signed client assertion, the token on every
request (and on file downloads only when the manifest asks), refresh on 401, a bad key refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from her2cds_cli.bulk.smart import BackendAuth, load_key
from her2cds_cli.bulk.transport import BulkError
from her2cds_cli.cli import main
from tests.bulk_server import BulkServer, Scenario
from tests.bulk_support import (
    PATIENTS,
    Recorder,
    data_files,
    export,
    make_cohort,
    start_servers,
)

Start = Callable[..., BulkServer]
cohort = pytest.fixture(scope="module")(make_cohort)
bulk = pytest.fixture(start_servers)
CLIENT = "her2cds-population"


def _key(kind: str) -> Any:
    if kind == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1())


def _pem(key: Any, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _cli(server: BulkServer, out: Path, key: Path, *extra: str) -> int:
    return main(
        ["export", "--fhir-server", server.base, "--out", str(out), "--client-id", CLIENT,
         "--private-key", str(key), *extra]
    )  # fmt: skip


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_backend_services_token_on_every_request_and_file(
    alg: str, bulk: Start, tmp_path: Path
) -> None:
    key = _key(alg)
    server = bulk(Scenario(polls=1, require_token=True), clients={CLIENT: key.public_key()})
    out = tmp_path / "out"
    assert _cli(server, out, _pem(key, tmp_path / "key.pem")) == 0
    assert len(data_files(out)["Patient"]) == PATIENTS
    (claims,) = server.token_requests  # one token, cached for the whole export
    assert claims["iss"] == claims["sub"] == CLIENT and claims["alg"] == alg
    assert claims["aud"] == f"{server.base}/token"
    # least privilege: read access to the exported types only (SMART v1 names: no v2 capability)
    assert set(claims["scope"].split()) >= {"system/Patient.read", "system/Observation.read"}
    assert not any("*" in s for s in claims["scope"].split())
    files = [h for p, h in server.auth_headers if "/files/" in p]
    assert files and all(h and h.startswith("Bearer ") for h in files)


def test_scopes_are_smart_v2_when_the_server_speaks_v2(bulk: Start, tmp_path: Path) -> None:
    key = _key("ES384")
    server = bulk(
        Scenario(polls=0, require_token=True, capabilities=("permission-v2",)),
        clients={CLIENT: key.public_key()},
    )
    assert _cli(server, tmp_path / "out", _pem(key, tmp_path / "k.pem")) == 0
    assert "system/Condition.rs" in server.token_requests[0]["scope"].split()


def test_a_key_the_server_does_not_know_is_refused(
    bulk: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = bulk(Scenario(require_token=True), clients={CLIENT: _key("RS384").public_key()})
    assert _cli(server, tmp_path / "out", _pem(_key("RS384"), tmp_path / "other.pem")) == 1
    err = capsys.readouterr().err
    assert "token request failed: HTTP 401" in err and "Signature verification failed" in err
    assert not server.kickoffs and server.token_errors


def test_without_credentials_a_protected_server_is_told_in_one_sentence(
    bulk: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = bulk(Scenario(require_token=True))
    assert main(["export", "--fhir-server", server.base, "--out", str(tmp_path / "o")]) == 1
    assert "kick-off failed: HTTP 401" in capsys.readouterr().err


def test_a_revoked_token_is_replaced_once(bulk: Start, tmp_path: Path) -> None:
    key = _key("RS384")
    server = bulk(
        Scenario(polls=0, require_token=True, reject_first_token=True),
        clients={CLIENT: key.public_key()},
    )
    rec = Recorder()
    ex = export(server, tmp_path / "out", rec)
    ex.client.auth = BackendAuth(
        ex.client, CLIENT, load_key(_pem(key, tmp_path / "k.pem")), f"{server.base}/token", "s"
    )
    assert ex.run().complete
    assert len(server.token_requests) == 2
    assert server.token_requests[0]["jti"] != server.token_requests[1]["jti"]


def test_an_expiring_token_is_renewed_before_it_runs_out(bulk: Start, tmp_path: Path) -> None:
    key = _key("ES384")
    server = bulk(Scenario(polls=2, require_token=True), clients={CLIENT: key.public_key()})
    now = [time.time() - 295]  # the assertion's exp stays within the server's 5 minutes
    ex = export(server, tmp_path / "out", Recorder())
    auth = BackendAuth(
        ex.client, CLIENT, load_key(_pem(key, tmp_path / "k.pem")), f"{server.base}/token", "s"
    )
    auth.clock = lambda: now[0]
    ex.client.auth = auth
    auth.header()
    now[0] += 280  # 20 s left of a 300 s token: inside the refresh margin
    auth.header()
    assert len(server.token_requests) == 2


def test_the_token_stays_off_files_the_manifest_does_not_protect(
    bulk: Start, tmp_path: Path
) -> None:
    """requiresAccessToken false: the files may sit elsewhere (a bucket); no token goes there."""
    key = _key("RS384")
    server = bulk(Scenario(polls=0, require_token=False), clients={CLIENT: key.public_key()})
    assert _cli(server, tmp_path / "out", _pem(key, tmp_path / "k.pem")) == 0
    files = [h for p, h in server.auth_headers if "/files/" in p]
    kickoff = [h for p, h in server.auth_headers if p.endswith("$export")]
    assert files and not any(files) and all(kickoff)


def test_keys_that_cannot_sign_rs384_or_es384_are_refused(tmp_path: Path) -> None:
    p256 = _pem(ec.generate_private_key(ec.SECP256R1()), tmp_path / "p256.pem")
    with pytest.raises(BulkError, match="neither RSA nor EC P-384"):
        load_key(p256)
    small = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024), tmp_path / "s.pem")
    with pytest.raises(BulkError, match="2048 or more"):
        load_key(small)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(BulkError, match="cannot read the private key"):
        load_key(tmp_path / "junk.pem")


def test_no_token_over_plain_http_to_another_host() -> None:
    from her2cds_cli.bulk.transport import check_tls

    check_tls("https://ehr.example.org/fhir/Patient/$export")
    check_tls("http://127.0.0.1:8080/fhir")
    with pytest.raises(BulkError, match="refusing to send the access token over http"):
        check_tls("http://ehr.example.org/fhir/Patient/$export")
