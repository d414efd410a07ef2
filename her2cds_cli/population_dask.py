"""`her2-cds population --engine dask`: the same per-patient pipeline on Dask distributed.

NDJSON is read in byte blocks (`dask.bytes.read_bytes`), each line keyed by the patient that
owns it (`population._patient_of`, the pool's own rule) and moved to its patient's partition
by Dask's P2P shuffle (`DataFrame.shuffle`, buffered on the workers' disks): no process holds
the cohort. Every patient then goes through `population.run_one`, the function the process
pool calls, with its resources in input order and the resources of no patient (Medication)
appended, as `group_ndjson` does: the rows are the pool's rows. Bundles are read by the
workers, one file per patient.

Results: results.csv (the pool's writer, the pool's row order), results.parquet (the same rows)
and report.html. Dask is an optional dependency (`pip install 'her2-cds[dask]'`).
"""

from __future__ import annotations

import argparse
import csv
import logging
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from cds_service.errors import Her2CdsError

if TYPE_CHECKING:  # the rest is imported where used: `her2-cds --help` stays light
    import pandas as pd
    from dask.delayed import Delayed
    from distributed import Client

    from her2cds_cli.population_report import Result

BLOCKSIZE = (
    16 * 2**20
)  # bytes of NDJSON per input partition: what a worker holds does not grow with n
CONNECT_TIMEOUT = "10s"
# The P2P shuffle's buffers per worker (Dask's defaults: 1 GiB to send, 100 MiB to write): small
# and fixed, so that a worker's memory does not grow with the export up to those defaults.
# Remote workers take them from their own config (compose sets DASK_DISTRIBUTED__P2P__...).
P2P_BUFFERS = {"distributed.p2p.comm.buffer": "64 MiB", "distributed.p2p.storage.buffer": "32 MiB"}
SCHEMES = ("tcp", "tls")

Keyed = tuple[str | None, tuple[int, int, int], bytes]  # (patient, position in the input, line)


class DaskEngineError(Her2CdsError):
    """The Dask engine cannot run (not installed, scheduler unreachable); the text says why."""


def scheduler_address(text: str) -> str:
    """argparse type of --scheduler: a Dask scheduler address, tcp://host:port (or tls://)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme not in SCHEMES or not parts.hostname or port is None or parts.path:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Dask scheduler address (expected tcp://host:port, e.g. "
            "tcp://scheduler:8786)"
        )
    return text


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _truth(truth_dir: str, pid: str) -> dict[str, Any] | None:
    path = Path(truth_dir) / f"{pid}.truth.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None


def _keyed_lines(block: bytes, file_index: int, block_index: int) -> list[Keyed]:
    """The lines of one block, each with its patient and its position in the input."""
    from her2cds_cli.population import _patient_of

    out: list[Keyed] = []
    for i, line in enumerate(block.splitlines()):
        if line.strip():
            out.append((_patient_of(orjson.loads(line)), (file_index, block_index, i), line))
    return out


COLUMNS = ("patient", "file", "block", "line_no", "line")


def _frame(block: bytes, file_index: int, block_index: int) -> pd.DataFrame:
    """One block as a table: the patient of each line, its position, the line itself."""
    import pandas as pd

    keyed = _keyed_lines(block, file_index, block_index)
    return pd.DataFrame(
        {
            "patient": pd.array([k[0] for k in keyed], dtype="string"),
            "file": pd.array([k[1][0] for k in keyed], dtype="int64"),
            "block": pd.array([k[1][1] for k in keyed], dtype="int64"),
            "line_no": pd.array([k[1][2] for k in keyed], dtype="int64"),
            "line": pd.array([k[2].decode("utf-8") for k in keyed], dtype="string"),
        },
        columns=list(COLUMNS),
    )


def _in_order(*frames: pd.DataFrame) -> list[dict[str, Any]]:
    """The lines of the given tables, parsed, in input order (the resources of no patient)."""
    import pandas as pd

    both = pd.concat(frames) if frames else _frame(b"", 0, 0)
    both = both.sort_values(["file", "block", "line_no"])
    return [orjson.loads(line) for line in both["line"]]


def _evaluate_frame(
    frame: pd.DataFrame, shared: list[dict[str, Any]], truth_dir: str
) -> list[Result]:
    """One partition after the shuffle: each patient's resources in input order, then the
    shared ones, through the pool's run_one."""
    from her2cds_cli.population import Task, run_one

    out = []
    frame = frame.sort_values(["patient", "file", "block", "line_no"])
    for pid, rows in frame.groupby("patient", sort=False):
        resources = [orjson.loads(line) for line in rows["line"]] + shared
        name = str(pid)
        out.append(run_one(Task(name, resources=resources, truth=_truth(truth_dir, name))))
    return out


def _evaluate_bundles(paths: Iterable[str], truth_dir: str) -> list[Result]:
    from her2cds_cli.population import Task, run_one

    out = []
    for p in paths:
        name = Path(p).name
        truth = _truth(truth_dir, name.split(".json")[0])
        out.append(run_one(Task(name, path=p, truth=truth)))
    return out


def _files(source: Path) -> tuple[list[Path], list[Path]]:
    """(Bundles, NDJSON files) in the order `population.discover` reads them."""
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    ndjson = [p for p in files if p.name.endswith((".ndjson", ".ndjson.gz"))]
    bundles = [
        p
        for p in files
        if p.name.endswith((".json", ".json.gz")) and not p.name.endswith(".truth.json")
    ]
    return bundles, ndjson


def ndjson_rows(
    paths: list[Path], truth_dir: str, blocksize: int, partitions: int
) -> list[Delayed]:
    """Delayed lists of Results, one per partition of patients of the NDJSON files: the
    lines are moved to their patient's partition by a P2P shuffle (on disk, so the memory of
    a worker does not grow with the export)."""
    import dask.dataframe as dd
    from dask import delayed
    from dask.bytes import read_bytes

    parts = []
    for index, path in enumerate(paths):
        packed = _is_gzip(path)
        _, blocks = read_bytes(
            str(path),
            delimiter=b"\n",
            blocksize=None if packed else blocksize,
            sample=False,
            compression="gzip" if packed else None,
        )
        parts += [delayed(_frame)(b, index, i) for i, b in enumerate(blocks[0])]
    lines = dd.from_delayed(parts, meta=_frame(b"", 0, 0), verify_meta=False)
    unowned = lines[lines["patient"].isna()].to_delayed()
    shared = delayed(_in_order)(*unowned)
    owned = lines[~lines["patient"].isna()].shuffle(
        "patient", npartitions=max(partitions, len(parts)), shuffle_method="p2p"
    )
    return [delayed(_evaluate_frame)(part, shared, truth_dir) for part in owned.to_delayed()]


def _bundle_rows(paths: list[Path], truth_dir: str, partitions: int) -> list[Delayed]:
    """Delayed lists of Results, the Bundles split in `partitions` runs of files."""
    from dask import delayed

    names = [str(p) for p in paths]
    n = max(1, min(len(names), partitions))
    return [delayed(_evaluate_bundles)(names[i::n], truth_dir) for i in range(n)]


def _warm_plugin() -> Any:
    from distributed import WorkerPlugin

    from her2cds_cli.population import _warm

    class Warm(WorkerPlugin):  # type: ignore[misc]
        """Load the knowledge base and models once per worker, as the pool's initializer."""

        name = "her2cds-warm"

        def setup(self, worker: Any) -> None:
            _warm()

    return Warm()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@contextmanager
def dask_client(scheduler: str | None, workers: int, processes: bool = True) -> Iterator[Client]:
    """A client of the scheduler, or of a LocalCluster of `workers` single-threaded workers."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskEngineError(
            "the Dask engine needs dask[distributed] (pip install 'her2-cds[dask]')"
        ) from None
    # the in-process scheduler's P2P plugin logs every shuffle's start and end as warnings
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise DaskEngineError(
                f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} "
                f"({type(exc).__name__}): is it running, and is the address right?"
            ) from None
        with client:
            yield client
        return
    with (
        dask.config.set(P2P_BUFFERS),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_dask(
    source: Path,
    jobs: int,
    scheduler: str | None = None,
    processes: bool = True,
    blocksize: int = BLOCKSIZE,
    progress: bool = False,
) -> tuple[list[Result], dict[str, Any]]:
    """Results in the pool's order (Bundles by file name, then NDJSON patients by id), and
    facts about the run (workers, their peak memory)."""
    try:
        import dask
    except ImportError:
        raise DaskEngineError(
            "--engine dask needs Dask: pip install 'her2-cds[dask]' (the dev extra has it)"
        ) from None

    bundles, ndjson = _files(source)
    if not bundles and not ndjson:
        raise FileNotFoundError(f"no FHIR Bundles (.json) or NDJSON files in {source}")
    truth_dir = str(source if source.is_dir() else source.parent)
    with dask_client(scheduler, jobs, processes) as client:  # says so if Dask is not installed
        client.register_plugin(_warm_plugin())
        nworkers = max(1, len(client.scheduler_info()["workers"]))
        if progress:
            print(
                f"population: {nworkers} Dask workers at {client.scheduler.address}",
                file=sys.stderr,
            )
        from_bundles = _bundle_rows(bundles, truth_dir, nworkers * 8) if bundles else []
        from_ndjson = ndjson_rows(ndjson, truth_dir, blocksize, nworkers * 2) if ndjson else []
        got_bundles, got_ndjson = dask.compute(from_bundles, from_ndjson)
        peaks = client.run(_peak_rss_mb)
    rows = sorted((r for part in got_bundles for r in part), key=lambda r: r.name)
    rows += sorted((r for part in got_ndjson for r in part), key=lambda r: r.name)
    facts = {"engine": "dask", "workers": len(peaks), "worker_peak_rss_mb": sorted(peaks.values())}
    return rows, facts


def write_parquet(csv_path: Path, path: Path) -> None:
    """results.csv as Parquet: the same rows and columns; whole-number and decimal columns
    typed (an empty cell is null), the others text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    columns = {}
    for i, name in enumerate(header):
        cells = [row[i] for row in body]
        columns[name] = pa.array(_typed(cells))
    pq.write_table(pa.table(columns), path)


def _typed(cells: list[str]) -> list[Any]:
    for kind in (int, float):
        try:
            return [kind(c) if c != "" else None for c in cells]
        except ValueError:
            continue
    return cells


def population_dask(
    source: Path,
    out: Path,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    processes: bool = True,
) -> dict[str, Any]:
    """`population` on Dask: the same results.csv and report.html, plus results.parquet."""
    import os

    from her2cds_cli.population import summarise, write_csv
    from her2cds_cli.population_report import write_html

    started = time.perf_counter()
    results, facts = run_dask(
        source, jobs or os.cpu_count() or 1, scheduler, processes, progress=progress
    )
    summary = summarise(results)
    summary["seconds"] = time.perf_counter() - started
    summary["run"] = facts
    out.mkdir(parents=True, exist_ok=True)
    write_csv(results, out / "results.csv")
    write_parquet(out / "results.csv", out / "results.parquet")
    write_html(results, summary, out / "report.html", source=str(source))
    return summary
