"""The README stays true for a newcomer: its example output is what the command prints."""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from her2cds_cli.cli import main
from tests.conftest import ROOT


def test_readme_evaluate_example_is_what_evaluate_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cmd = re.search(r"\.venv/bin/her2-cds (evaluate tests/fixtures/\S+ --as-of \S+)\n", readme)
    assert cmd, "the README shows an evaluate command with --as-of"
    block = re.search(r"```\n(Patient thp-prog.*?)```", readme, re.S)
    assert block, "the README shows evaluate's output"
    monkeypatch.chdir(ROOT)
    assert main(cmd.group(1).split()) == 0
    assert capsys.readouterr().out.strip() == block.group(1).strip()


def test_readme_links_the_docs_it_moved_out_and_every_link_resolves() -> None:
    """Operations, authentication and the architecture live in docs/; the README points there,
    and no relative link in the README or docs/ points at a missing file."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/architecture.md", "docs/operations.md", "docs/authentication.md"):
        assert f"]({doc})" in readme and (ROOT / doc).is_file(), doc
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_readme_names_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/her2-cds serve" in readme
    assert "python -m pytest" in readme and "-m pytest" in ci


def test_readme_sandbox_section_commands_fit_together() -> None:
    """ "Try it in the CDS Hooks sandbox": the ports of the three commands are the ones in the URL
    to open, and the trusted-clients file named trusts the sandbox's local key set."""
    import json
    from urllib.parse import parse_qs, urlsplit

    from cds_service.security.jwks import StaticKeys, load_trusted_clients
    from tests.sandbox_support import SANDBOX_ISS, SANDBOX_JWKS, sandbox_url

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it in the CDS Hooks sandbox", 1)[1].split("\n## ", 1)[0]
    site = re.search(r"http\.server (\d+) --bind 127\.0\.0\.1 --directory (\S+)", section)
    fhir = re.search(r"-m tests\.sandbox_support fhir (\S+) --port (\d+)", section)
    clients = re.search(r"HER2CDS_TRUSTED_CLIENTS=(\S+)", section)
    open_fhir = re.search(r"HER2CDS_OPEN_FHIR_SERVERS=(\S+)", section)
    serve = re.search(r"\.venv/bin/her2-cds serve --auth required --port (\d+)", section)
    url = re.search(r"<(http://127\.0\.0\.1:\d+/\?[^>]+)>", section)
    assert site and fhir and clients and open_fhir and serve and url, section
    assert (ROOT / fhir.group(1)).exists()
    patient = json.loads((ROOT / fhir.group(1)).read_text(encoding="utf-8"))["entry"][0]
    fhir_url = f"http://127.0.0.1:{fhir.group(2)}/fhir"
    assert open_fhir.group(1) == fhir_url
    expected = sandbox_url(
        f"http://127.0.0.1:{site.group(1)}",
        fhir_url,
        patient["resource"]["id"],
        f"http://127.0.0.1:{serve.group(1)}",
    )
    assert url.group(1) == expected
    assert parse_qs(urlsplit(expected).query)["patientId"] == [patient["resource"]["id"]]
    if SANDBOX_JWKS.exists() and (ROOT.parent / site.group(2).removeprefix("../")).exists():
        (client,) = load_trusted_clients(str(ROOT / clients.group(1))).values()
        assert client.iss == SANDBOX_ISS and isinstance(client.keys, StaticKeys)
        published = json.loads(SANDBOX_JWKS.read_text(encoding="utf-8"))["keys"]
        assert set(client.keys.keys) == {k["kid"] for k in published}


def test_readme_curl_hook_call_posts_the_example_request_and_gets_cards(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `curl` line of the quick start, as the Flask test client: the example request is a
    complete patient-view call (every prefetch key discovery asks for) and gets cards."""
    from synthetic.generate import DEFAULT_AS_OF

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(curl -s -X POST .*?)```", readme, re.S)
    assert block, "the README shows a curl call of a hook"
    argv = shlex.split(block.group(1).replace("\\\n", " "))
    data = argv[argv.index("--data") + 1]
    assert data.startswith("@") and "Content-Type: application/json" in argv
    url = urlsplit(argv[-1])
    assert url.netloc == "127.0.0.1:8080" and url.path.startswith("/cds-services/")
    body = json.loads((ROOT / data[1:]).read_text(encoding="utf-8"))
    discovery = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    service = discovery[url.path.rsplit("/", 1)[1]]
    assert body["hook"] == service["hook"] == "patient-view"
    assert set(body["prefetch"]) == set(service["prefetch"])
    answer = client.post(url.path, json=body)
    assert answer.status_code == 200 and answer.get_json()["cards"]  # any day: cards
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: DEFAULT_AS_OF)  # its snapshot
    cards = client.post(url.path, json=body).get_json()["cards"]
    next_line = [c for c in cards if c["extension"]["org.her2cds"]["kind"] == "next-line"]
    assert [c["extension"]["org.her2cds"]["regimen"]["id"] for c in next_line] == ["tdxd"]


def test_readme_example_request_is_what_its_recipe_writes() -> None:
    from tests.make_hook_example import EXAMPLE, request

    assert json.loads(EXAMPLE.read_text(encoding="utf-8")) == request()


def test_readme_commands_use_the_venv_it_sets_up() -> None:
    """`python -m bench.run` with the system interpreter lacks the project's packages."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/python -m bench.run" in readme
    assert not re.search(r"(?<![/\w])python3? -m (?!venv|http\.server)", readme)
