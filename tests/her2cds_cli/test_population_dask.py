"""`her2-cds population --engine dask`: the pool's rows, from a shuffle on Dask distributed."""

from __future__ import annotations

import csv
import hashlib
import json
import socket
import sys
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("distributed")
pyarrow_parquet = pytest.importorskip("pyarrow.parquet")

from her2cds_cli import population_dask  # noqa: E402
from her2cds_cli.cli import main  # noqa: E402
from her2cds_cli.population import population, write_csv  # noqa: E402
from her2cds_cli.population_dask import population_dask as run_dask  # noqa: E402
from synthetic.generate import generate_cohort  # noqa: E402

Rows = list[dict[str, str]]


def rows(out: Path) -> Rows:
    with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def same(rows_: Rows) -> Rows:
    """The rows without the run's own timing (ms differs from run to run, on any engine)."""
    return [{k: v for k, v in r.items() if k != "ms"} for r in rows_]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("bundles")
    generate_cohort(data, 60, seed=23, progress=False)
    return data


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("bulk")
    generate_cohort(data, 60, seed=24, ndjson=True, progress=False)
    return data


@pytest.fixture(scope="module")
def pool_bulk(bulk: Path, tmp_path_factory: pytest.TempPathFactory) -> Rows:
    out = tmp_path_factory.mktemp("pool-bulk")
    population(bulk, out, jobs=2, progress=False)
    return rows(out)


def test_bundles_give_the_pools_rows(bundles: Path, tmp_path: Path) -> None:
    population(bundles, tmp_path / "pool", jobs=2, progress=False)
    summary = run_dask(bundles, tmp_path / "dask", jobs=2, progress=False, processes=False)
    pool = rows(tmp_path / "pool")
    assert len(pool) == 60 and summary["patients"] == 60 and summary["errors"] == 0
    assert same(rows(tmp_path / "dask")) == same(pool)
    assert {r["outcome"] for r in pool} >= {"recommendation"}  # the cohort is not all empty


def test_ndjson_through_the_cli_on_worker_processes(
    bulk: Path, pool_bulk: Rows, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dask"
    code = main(["population", "--in", str(bulk), "--out", str(out), "--jobs", "2", "--engine", "dask"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    got = rows(out)
    assert len(got) == 60 and all(r["compared"] == "yes" for r in got)
    assert same(got) == same(pool_bulk)
    assert [r["patient"] for r in got] == sorted(r["patient"] for r in got)
    table = pyarrow_parquet.read_table(out / "results.parquet")
    assert table.column_names == list(got[0])
    as_text = [
        {k: "" if v is None else (f"{v:.1f}" if k == "ms" else str(v)) for k, v in r.items()}
        for r in table.to_pylist()
    ]
    assert as_text == got
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "<script" not in html


def test_small_blocks_split_lines_and_patients_across_partitions(
    bulk: Path, pool_bulk: Rows, tmp_path: Path
) -> None:
    """200 KB blocks: patients' resources arrive from many blocks, lines cut at block ends."""
    results, facts = population_dask.run_dask(bulk, 2, processes=False, blocksize=200_000)
    assert facts["workers"] == 2 and len(facts["worker_peak_rss_mb"]) == 2
    write_csv(results, tmp_path / "results.csv")
    assert same(rows(tmp_path)) == same(pool_bulk)


def test_a_medication_resource_reaches_every_patient_as_on_the_pool(tmp_path: Path) -> None:
    """Bulk exports give Medications in their own file, without a patient: the pool appends
    them to every patient; the Dask engine broadcasts them the same way."""
    data = tmp_path / "bulk"
    generate_cohort(data, 12, seed=25, ndjson=True, progress=False)
    requests = (data / "MedicationRequest.ndjson").read_bytes().splitlines()
    medications: dict[str, dict[str, object]] = {}
    rewritten = []
    for line in requests:
        res = orjson.loads(line)
        concept = res.pop("medicationCodeableConcept", None)
        if concept is None:  # a contained Medication already
            rewritten.append(line)
            continue
        med_id = "med-" + hashlib.sha256(orjson.dumps(concept)).hexdigest()[:12]
        medications[med_id] = {"resourceType": "Medication", "id": med_id, "code": concept}
        res["medicationReference"] = {"reference": f"Medication/{med_id}"}
        rewritten.append(orjson.dumps(res))
    (data / "MedicationRequest.ndjson").write_bytes(b"\n".join(rewritten) + b"\n")
    (data / "Medication.ndjson").write_bytes(
        b"\n".join(orjson.dumps(m) for m in medications.values()) + b"\n"
    )
    population(data, tmp_path / "pool", jobs=1, progress=False)
    run_dask(data, tmp_path / "dask", jobs=2, progress=False, processes=False)
    pool = rows(tmp_path / "pool")
    assert same(rows(tmp_path / "dask")) == same(pool)
    # the references were resolved: the regimens are still found
    assert any(r["regimen"] for r in pool)


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:8786", "tcp://scheduler:8786", "tls://dask.example.org:8786"]
)
def test_scheduler_addresses_parse(address: str) -> None:
    assert population_dask.scheduler_address(address) == address


@pytest.mark.parametrize(
    "address",
    ["scheduler:8786", "http://scheduler:8786", "tcp://scheduler", "tcp://:8786", "tcp://h:x"],
)
def test_a_scheduler_that_is_not_an_address_is_refused_by_the_parser(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["population", "--in", str(tmp_path), "--engine", "dask", "--scheduler", address])
    assert exc.value.code == 2
    assert "is not a Dask scheduler address (expected tcp://host:port" in capsys.readouterr().err


def test_an_unreachable_scheduler_fails_in_one_sentence(
    bulk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(population_dask, "CONNECT_TIMEOUT", "2s")
    address = f"tcp://127.0.0.1:{port}"
    argv = ["population", "--in", str(bulk), "--out", str(tmp_path), "--engine", "dask"]
    assert main([*argv, "--scheduler", address]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"her2-cds: cannot reach the Dask scheduler at {address}")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results.csv").exists()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blocksize=st.integers(min_value=64, max_value=4000))
def test_blocks_give_every_line_once_in_file_order(blocksize: int, tmp_path: Path) -> None:
    """Whatever the block size, the keyed lines are the file's lines, in order, each once."""
    import dask
    from dask.bytes import read_bytes

    path = tmp_path / "Observation.ndjson"
    lines = [orjson.dumps({"resourceType": "Observation", "id": str(i), "subject": {"reference": f"Patient/p{i % 3}"}, "x": "y" * (i * 37 % 200)}) for i in range(40)]  # fmt: skip
    path.write_bytes(b"\n".join(lines) + b"\n")
    _, blocks = read_bytes(str(path), delimiter=b"\n", blocksize=blocksize, sample=False)
    parts = dask.compute(
        *[dask.delayed(population_dask._keyed_lines)(b, 0, i) for i, b in enumerate(blocks[0])],
        scheduler="sync",
    )
    keyed = sorted((x for part in parts for x in part), key=lambda x: x[1])
    assert [x[2] for x in keyed] == lines
    assert [x[0] for x in keyed] == [f"p{i % 3}" for i in range(40)]


def test_a_running_scheduler_given_by_address_gives_the_pools_rows(
    bulk: Path, pool_bulk: Rows, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        argv = ["population", "--in", str(bulk), "--out", str(tmp_path), "--engine", "dask"]
        assert main([*argv, "--scheduler", address]) == 0
    assert same(rows(tmp_path)) == same(pool_bulk)


def services_volumes() -> set[str]:
    from tests.conftest import ROOT

    return set(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["volumes"])


def test_the_compose_profile_points_population_at_its_scheduler(tmp_path: Path) -> None:
    from her2cds_cli.cli import build_parser
    from tests.conftest import ROOT

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    image = services["her2cds"]["image"]
    scheduler, worker, run = (services[n] for n in ("dask-scheduler", "dask-worker", "population"))
    assert scheduler["image"] == worker["image"] == run["image"] == image
    assert scheduler["profiles"] == worker["profiles"] == ["dask"]
    assert scheduler["entrypoint"][:2] == ["dask", "scheduler"]
    port = scheduler["entrypoint"][scheduler["entrypoint"].index("--port") + 1]
    assert port in scheduler["expose"]
    address = f"tcp://dask-scheduler:{port}"
    assert worker["entrypoint"][:3] == ["dask", "worker", address]
    assert worker["entrypoint"][worker["entrypoint"].index("--nthreads") + 1] == "1"
    assert int(str(worker["deploy"]["replicas"]).split(":-")[-1].rstrip("}")) == 2
    argv = [*run["entrypoint"][1:], *run["command"]]
    given_in = argv[argv.index("--in") + 1]  # a path inside the container: parsed as a local one
    argv[argv.index("--in") + 1] = str(tmp_path)
    args = build_parser().parse_args(argv)
    assert (args.engine, args.scheduler) == ("dask", address)
    # the workers read the input files themselves: the same directory at the same path
    assert worker["volumes"][0] == run["volumes"][0]
    data = run["volumes"][0].split(":")[-1]
    # the shuffle's disk buffer is a volume, not the (memory-backed) tmpfs
    scratch = worker["entrypoint"][worker["entrypoint"].index("--local-directory") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in worker["volumes"]}
    assert any(scratch.startswith(m) and h in services_volumes() for m, h in mounts.items())
    assert given_in.startswith(data + "/") and str(args.out).startswith(data + "/")


def test_dask_engine_without_dask_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer with `pip install -e .` (no dask extra): one sentence, not a traceback."""
    from her2cds_cli.cli import main

    for name in ("dask", "dask.dataframe", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    src = tmp_path / "in"
    src.mkdir()
    (src / "p.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []})
    )
    status = main(
        ["population", "--in", str(src), "--out", str(tmp_path / "out"), "--engine", "dask"]
    )
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "pip install 'her2-cds[dask]'" in err
