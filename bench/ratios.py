"""Every benchmark that has raw anchors, in one run, and one table of their ratios.

    .venv/bin/python bench/ratios.py [--quick] [--only core,cycle] [--postgres URL]
                                     [--core-args "..."] [--cycle-args "..."] ...

Each bench runs as a child process (from the project root, as ``make bench`` runs them),
at sizes that fit a 2-core machine in about 15 minutes (``--quick``: a smoke run of seconds);
its output goes to standard error as it comes, and its last JSON line gives its pairs
(bench/pairs.py). ``--NAME-args`` adds flags to one bench (after the sizes chosen here, so
they win). The table goes to standard output: the project's figure, the raw library's, their
ratio (higher is better) and the target. A bench that fails or prints no pairs is named, and
makes the exit status 1; a missed target does not.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pairs import Pair, pairs_of

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    #: flags of the full run and of the quick one; ``{tmp}`` is a fresh folder
    full: str
    quick: str


BENCHES = (
    Bench(
        "core",
        "core_bench.py",
        "--users 450 --events 1000000 --db {tmp}/ledger.db",
        "--events 500 --users 3 --sources 1 --apps 10 --single 20 --chunk 200 --db {tmp}/ledger.db",
    ),
    Bench(
        "cycle",
        "cycle_bench.py",
        "--folder {tmp}/cycle",
        "--users 1 --latency 0.001 --concurrency 4 --folder {tmp}/cycle",
    ),
    Bench(
        "nats",
        "nats_bench.py",
        # up to a rate the intake cannot sustain, so that its saturation is measured
        "--rates 500,1000,2000,4000,8000 --db {tmp}/nats.db",
        "--rates 50 --seconds 0.5 --users 2 --apps 3 --bare-extra-steps 1 --db {tmp}/nats.db",
    ),
    Bench(
        "http",
        "http_bench.py",
        # the target's load: 200 requests/s while the user's data changes twice a second
        "--rate 200 --churn 2 --db {tmp}/http.db",
        "--listings 20 --rate 20 --seconds 1 --warmup 0.2 --db {tmp}/http.db",
    ),
)


def run(bench: Bench, flags: list[str]) -> tuple[list[Pair], str | None]:
    """Run one bench, echoing its output to standard error: (its pairs, what went wrong)."""
    command = [sys.executable, f"bench/{bench.script}", *flags]
    print(f"== {bench.name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_DATABASE")}
    lines: list[str] = []
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, bufsize=1
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            sys.stderr.write(line)
    output = "".join(lines)
    if child.returncode:
        return [], f"{bench.script} exited {child.returncode}"
    try:
        return pairs_of(output), None
    except ValueError as error:
        return [], f"{bench.script}: {str(error).splitlines()[0]}"


def figure(value: float, unit: str) -> str:
    shown = f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"
    return f"{shown} {unit}"


def row(pair: Pair) -> str:
    of = "project/raw" if pair.higher_is_better else "raw/project"
    target = "" if pair.target is None else f">= {pair.target:.1%}"
    met = {None: "", True: "yes", False: "NO"}[pair.met]
    cells = [
        pair.measure,
        figure(pair.project, pair.unit),
        figure(pair.raw, pair.unit),
        f"{pair.ratio:.1%} ({of})",
        target,
        met,
    ]
    return "| " + " | ".join(cells) + " |"


def table(pairs: list[tuple[str, Pair]], problems: list[str], header: list[str]) -> str:
    lines = [*header, "", "| measure | project | raw | ratio | target | met? |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | --- |")
    lines += [row(pair) for _, pair in pairs]
    lines += [f"not measured: {problem}" for problem in problems]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds each")
    names = [bench.name for bench in BENCHES]
    parser.add_argument("--only", default=",".join(names), help="benches to run, comma-separated")
    parser.add_argument("--postgres", metavar="URL", help="the core bench appends there too")
    for name in names:
        parser.add_argument(f"--{name}-args", default="", help=f"more flags for {name}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown or not chosen:
        parser.error(f"--only: unknown bench {unknown or args.only!r}; choose among {names}")

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    gathered: list[tuple[str, Pair]] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ratios-") as tmp:
        for bench in BENCHES:
            if bench.name not in chosen:
                continue
            sizes = bench.quick if args.quick else bench.full
            flags = [flag.format(tmp=tmp) for flag in shlex.split(sizes)]
            if bench.name == "core" and args.postgres:
                flags += ["--postgres", args.postgres]
            flags += shlex.split(getattr(args, f"{bench.name}_args"))
            begun = time.perf_counter()
            pairs, problem = run(bench, flags)
            print(f"== {bench.name}: {time.perf_counter() - begun:.0f} s", file=sys.stderr)
            gathered += [(bench.name, pair) for pair in pairs]
            if problem:
                problems.append(problem)
    header = [
        f"date: {started:%Y-%m-%d %H:%M} UTC ({(datetime.now(UTC) - started).seconds} s)",
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}",
    ]
    print(table(gathered, problems, header), flush=True)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
