"""Benchmark: configuring integration services (ICs) on N VMs of one lab Hyper-V host, three ways.

(a) one hyperv.integration.vm_integration_service task for all VMs and all six ICs;
(b) one task per VM (a loop over the VMs), six ICs each;
(c) one task per VM per IC (a loop over VM x IC pairs), the way a single-service module such as
    microsoft.hyperv's hv_integration_service has to be used (emulated with our module, one VM and one
    IC per loop item).

Every run is a real ansible-playbook over WinRM against a fresh lab (tests/lab) whose host holds every
command's output back for ``--delay`` seconds (the lab's `delay` fault), a stand-in for the cost of
starting Windows PowerShell and loading the Hyper-V module. Measured per run: PowerShell commands,
WinRM requests and bytes sent to the host (lab counters), controller CPU time and peak RSS (rusage of
ansible-playbook and every process it waited for), and wall time. Runs of (b) and (c) with more loop
items than ``--max-items`` are not run: they are extrapolated from the measured per-item cost and
labelled so in the table, the JSON and the plot.

Usage: bash scripts/benchmark.sh [options]  (see --help; docs/performance.md has the results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from support.lab_process import Lab  # noqa: E402
from support.playbook import BIN, ansible_env  # noqa: E402
from support.public_names import IC_KEYS  # noqa: E402

# Hyper-V's defaults are every IC on but guest_service_interface, so this wish changes two ICs per VM
# (time_synchronization off, guest_service_interface on) and leaves four as they are: every case does
# the same reads, the same comparisons and the same 2 x N writes.
WANTED = {
    "heartbeat": "enabled",
    "shutdown": "enabled",
    "time_synchronization": "disabled",
    "key_value_pair_exchange": "enabled",
    "vss": "enabled",
    "guest_service_interface": "enabled",
}
WRITES_PER_VM = 2
CASES = {
    "a": "one task, all VMs",
    "b": "one task per VM",
    "c": "one task per VM per IC",
}
METRICS = ("commands", "requests", "bytes_to_host", "cpu_s", "wall_s")


# -- counting ----------------------------------------------------------------------------------------
def host_counters(state: dict) -> dict[str, int]:
    """The Hyper-V host endpoint's own counters from `lab state` (guests' endpoints left out)."""
    return dict(state["host"]["counters"])


def host_delta(before: dict, after: dict) -> dict[str, int]:
    """What one run cost the host, from `lab state` before and after it.

    commands: WinRM Commands (each one a PowerShell process on a real host); requests: HTTP POSTs
    (every WS-Management message: Create, Command, Send, Receive, Signal, Delete); bytes_to_host: HTTP
    request bodies the host received; bytes_from_host: response bodies; writes: model changes."""
    b, a = host_counters(before), host_counters(after)
    return {
        "commands": a["commands"] - b["commands"],
        "calls": a["calls"] - b["calls"],
        "requests": a["requests"] - b["requests"],
        "bytes_to_host": a["bytes_received"] - b["bytes_received"],
        "bytes_from_host": a["bytes_sent"] - b["bytes_sent"],
        "writes": a["writes"] - b["writes"],
    }


def loop_items(case: str, n: int) -> int:
    """Task executions (loop items) the case needs for N VMs: one PowerShell process each."""
    return {"a": 1, "b": n, "c": n * len(IC_KEYS)}[case]


# -- lab and playbooks -------------------------------------------------------------------------------
def vm_names(n: int) -> list[str]:
    return ["vm%04d" % i for i in range(n)]


def labfile(n: int, delay: float) -> dict:
    faults = [{"type": "delay", "seconds": delay}] if delay > 0 else []
    return {
        "host": {"name": "hv01", "language": "en-US"},
        "vms": [{"name": name, "state": "Running", "guest": "none"} for name in vm_names(n)],
        "faults": faults,
    }


def play(case: str, names: list[str]) -> list[dict]:
    module = "hyperv.integration.vm_integration_service"
    if case == "a":
        task = {"name": "all VMs", module: {"name": names, "services": WANTED}}
    elif case == "b":
        task = {
            "name": "one VM",
            module: {"name": "{{ item }}", "services": WANTED},
            "loop": names,
        }
    elif case == "c":
        items = [{"vm": name, "services": {key: WANTED[key]}} for name in names for key in IC_KEYS]
        task = {
            "name": "one VM, one IC",
            module: {"name": "{{ item.vm }}", "services": "{{ item.services }}"},
            "loop": items,
            "loop_control": {"label": "{{ item.vm }} {{ item.services.keys() | first }}"},
        }
    else:
        raise ValueError(case)
    return [{"name": "benchmark case %s" % case, "hosts": "hyperv_hosts", "gather_facts": False, "tasks": [task]}]


@dataclass
class Run:
    rc: int
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    log: str


def run_playbook(playbook: Path, inventory: Path, log: Path) -> Run:
    """ansible-playbook as a child process; its rusage (os.wait4) covers it and every process it waited
    for (forked workers, ssh): controller CPU is user + system time, peak memory the largest ru_maxrss."""
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    env = ansible_env(None)  # no result log: the run's cost is what is measured
    with log.open("wb") as out:
        start = time.perf_counter()
        with subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env) as proc:
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Run(
        rc=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024.0,  # kilobytes on Linux
        log=str(log),
    )


# -- one measurement ---------------------------------------------------------------------------------
@dataclass
class Result:
    case: str
    n: int
    items: int
    how: str  # "measured" | "extrapolated"
    commands: float
    requests: float
    bytes_to_host: float
    cpu_s: float
    wall_s: float
    maxrss_mb: float | None = None
    writes: int | None = None
    extra: dict = field(default_factory=dict)


def check_converged(state: dict, names: list[str]) -> None:
    wanted = {key: value == "enabled" for key, value in WANTED.items()}
    for name in names:
        ics = state["vms"][name]["integration_services"]
        got = {key: ics[key]["enabled"] for key in IC_KEYS}
        if got != wanted:
            raise AssertionError("VM %s did not converge: %s" % (name, got))


def measure(case: str, n: int, delay: float, work: Path) -> Result:
    names = vm_names(n)
    directory = work / ("%s-%d" % (case, n))
    if directory.exists():
        shutil.rmtree(directory)
    with Lab(directory / "lab", labfile(n, delay)) as lab:
        playbook = directory / "play.yml"
        playbook.write_text(yaml.safe_dump(play(case, names), sort_keys=False), encoding="utf-8")
        before = lab.state()
        run = run_playbook(playbook, lab.inventory, directory / "ansible.log")
        after = lab.state()
    if run.rc != 0:
        raise RuntimeError("case %s N=%d: ansible-playbook exited %d, see %s" % (case, n, run.rc, run.log))
    delta = host_delta(before, after)
    check_converged(after, names)
    if delta["writes"] != WRITES_PER_VM * n:
        raise AssertionError("case %s N=%d: %d writes, expected %d" % (case, n, delta["writes"], WRITES_PER_VM * n))
    return Result(
        case=case,
        n=n,
        items=loop_items(case, n),
        how="measured",
        commands=delta["commands"],
        requests=delta["requests"],
        bytes_to_host=delta["bytes_to_host"],
        cpu_s=run.cpu_s,
        wall_s=run.wall_s,
        maxrss_mb=run.maxrss_mb,
        writes=delta["writes"],
        extra={"bytes_from_host": delta["bytes_from_host"], "log": run.log},
    )


def extrapolate(measured: list[Result], case: str, n: int) -> Result:
    """A linear model, metric = fixed + per_item x loop items, fitted through the two measured runs of
    this case with the most items (through the origin when only one was measured)."""
    points = sorted((r for r in measured if r.case == case and r.how == "measured"), key=lambda r: r.items)
    if not points:
        raise ValueError("nothing measured for case %s" % case)
    items = loop_items(case, n)
    values = {}
    if len(points) == 1 or points[-1].items == points[-2].items:
        p = points[-1]
        for metric in METRICS:
            values[metric] = getattr(p, metric) / p.items * items
        basis = "N=%d scaled" % p.n
    else:
        p1, p2 = points[-2], points[-1]
        for metric in METRICS:
            slope = (getattr(p2, metric) - getattr(p1, metric)) / (p2.items - p1.items)
            values[metric] = getattr(p2, metric) + slope * (items - p2.items)
        basis = "from N=%d and N=%d" % (p1.n, p2.n)
    return Result(case=case, n=n, items=items, how="extrapolated", extra={"basis": basis}, **values)


def baseline(work: Path) -> Run:
    """ansible-playbook with a play that runs no task: the start-up cost every case pays once."""
    directory = work / "baseline"
    directory.mkdir(parents=True, exist_ok=True)
    playbook = directory / "play.yml"
    playbook.write_text(
        yaml.safe_dump([{"name": "baseline", "hosts": "localhost", "gather_facts": False, "tasks": []}]),
        encoding="utf-8",
    )
    inventory = directory / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    return run_playbook(playbook, inventory, directory / "ansible.log")


def linux_guest(work: Path) -> list[dict]:
    """guest_integration_service on a lab Linux guest (Debian, systemd, over SSH): one run that starts
    the two daemons a first run stopped, then the same run again (nothing to change)."""
    directory = work / "linux"
    if directory.exists():
        shutil.rmtree(directory)
    spec = {"host": {"name": "hv01"}, "vms": [{"name": "lin01", "state": "Running", "guest": "linux"}]}
    module = "hyperv.integration.guest_integration_service"
    daemons = ("key_value_pair_exchange", "vss")

    def guest_play(state: str) -> list[dict]:
        services = {key: state if key in daemons else "started" for key in IC_KEYS}
        task = {"name": "guest", module: {"services": services, "skip_not_offered": True}}
        return [{"name": "linux guest", "hosts": "linux_guests", "gather_facts": False, "tasks": [task]}]

    rows = []
    with Lab(directory / "lab", spec) as lab:
        for label, state in (
            ("setup: stop 2 daemons", "stopped"),
            ("start 2 daemons", "started"),
            ("no change", "started"),
        ):
            playbook = directory / ("%s.yml" % label.split(":", maxsplit=1)[0].replace(" ", "-"))
            playbook.write_text(yaml.safe_dump(guest_play(state), sort_keys=False), encoding="utf-8")
            run = run_playbook(playbook, lab.inventory, playbook.with_suffix(".log"))
            if run.rc != 0:
                raise RuntimeError("linux guest run %r failed, see %s" % (label, run.log))
            if not label.startswith("setup"):
                rows.append({"run": label, "wall_s": run.wall_s, "cpu_s": run.cpu_s, "maxrss_mb": run.maxrss_mb})
    return rows


# -- output ------------------------------------------------------------------------------------------
def human_bytes(value: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return "%.1f %s" % (value / size, unit)
    return "%d B" % value


def fmt_row(r: Result) -> str:
    est = r.how == "extrapolated"
    mark = "~" if est else ""

    def num(value: float, digits: int = 0) -> str:
        return mark + ("%.*f" % (digits, value))

    return "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
        r.case,
        r.n,
        r.items,
        num(r.commands),
        num(r.requests),
        mark + human_bytes(r.bytes_to_host),
        num(r.cpu_s, 1),
        num(r.wall_s, 1),
        "—" if r.maxrss_mb is None else "%.0f" % r.maxrss_mb,
        "**extrapolated** (%s)" % r.extra.get("basis", "") if est else "measured",
    )


TABLE_HEAD = (
    "| case | N VMs | task runs | PowerShell commands | WinRM requests | bytes to host | controller CPU s "
    "| wall s | peak RSS MB | how |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def markdown(report: dict) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Command: `%s`  " % report["command"],
        "Machine: %s  " % report["machine"],
        "Per-command delay on the lab host: %.2f s. Under load: %s." % (report["delay"], report["load"]),
        "",
        "Cases: (a) %s; (b) %s; (c) %s. Six ICs per VM, 2 of them changed per VM in every case."
        % (CASES["a"], CASES["b"], CASES["c"]),
        "Values marked ~ are **extrapolated** from the measured per-item cost, not measured.",
        "",
        TABLE_HEAD,
    ]
    lines += [fmt_row(Result(**r)) for r in report["results"]]
    base = report["baseline"]
    lines += [
        "",
        "ansible-playbook start-up with no task (paid once by every run above): wall %.1f s, CPU %.1f s, "
        "peak RSS %.0f MB." % (base["wall_s"], base["cpu_s"], base["maxrss_mb"]),
    ]
    if report.get("scale"):
        s = report["scale"]
        lines += [
            "",
            "## Scale: %d VMs x 6 ICs in one task" % s["n"],
            "",
            "Completed (ansible-playbook rc 0, every VM converged, %d writes): %d PowerShell command(s), "
            "%d WinRM requests, %s to the host; wall %.1f s, controller CPU %.1f s, controller peak RSS %.0f MB."
            % (
                s["writes"],
                s["commands"],
                s["requests"],
                human_bytes(s["bytes_to_host"]),
                s["wall_s"],
                s["cpu_s"],
                s["maxrss_mb"],
            ),
        ]
    if report.get("linux"):
        lines += ["", "## Linux guest: one guest_integration_service run (SSH, no delay)", ""]
        lines += ["| run | wall s | controller CPU s | peak RSS MB |", "|---|---:|---:|---:|"]
        lines += [
            "| %s | %.1f | %.1f | %.0f |" % (r["run"], r["wall_s"], r["cpu_s"], r["maxrss_mb"]) for r in report["linux"]
        ]
    lines += ["", "Benchmark wall time: %.0f s." % report["total_s"], ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib  # only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [Result(**r) for r in report["results"]]
    panels = (
        ("wall_s", "wall time (s), %.2f s per command" % report["delay"]),
        ("commands", "PowerShell commands on the host"),
        ("cpu_s", "controller CPU time (s)"),
        ("bytes_to_host", "bytes sent to the host"),
    )
    colors = {"a": "tab:green", "b": "tab:orange", "c": "tab:red"}
    fig, grid = plt.subplots(2, 2, figsize=(12, 9))
    axes = list(grid.flat)
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for case in CASES:
            rows = sorted((r for r in results if r.case == case), key=lambda r: r.n)
            measured = [r for r in rows if r.how == "measured"]
            ax.plot(
                [r.n for r in measured],
                [getattr(r, metric) for r in measured],
                "o-",
                color=colors[case],
                label="(%s) %s" % (case, CASES[case]),
            )
            est = [r for r in rows if r.how == "extrapolated"]
            if est:
                link = measured[-1:] + est
                ax.plot(
                    [r.n for r in link],
                    [getattr(r, metric) for r in link],
                    "--",
                    color=colors[case],
                )
                ax.plot(
                    [r.n for r in est],
                    [getattr(r, metric) for r in est],
                    "o",
                    mfc="white",
                    color=colors[case],
                    label="(%s) extrapolated" % case,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("VMs (N)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "hyperv.integration: six ICs on each of N VMs of one Hyper-V host (lab)\n"
        "hollow markers and dashed lines are extrapolated, not measured",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d cores (os.cpu_count), %s, Python %s" % (
        cpu,
        os.cpu_count() or 0,
        platform.platform(),
        platform.python_version(),
    )


def load_note() -> str:
    """Whether something else was running: the load average and whether a CI run was going on."""
    busy = subprocess.run(["pgrep", "-f", "/tmp/ci-run"], capture_output=True, check=False).returncode == 0
    return "load average %.2f at the end%s" % (os.getloadavg()[0], "; a CI run was going on" if busy else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "benchmark", help="output directory")
    parser.add_argument("--delay", type=float, default=0.6, help="seconds per PowerShell command (default 0.6)")
    parser.add_argument("--sizes", default="1,10,100,500", help="numbers of VMs (default 1,10,100,500)")
    parser.add_argument(
        "--max-items",
        type=int,
        default=100,
        help="run (b) and (c) only up to this many loop items; extrapolate beyond (default 100)",
    )
    parser.add_argument("--scale", type=int, default=1000, help="VMs of the one-task scale run (0: skip)")
    parser.add_argument("--no-linux", action="store_true", help="skip the Linux guest run")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        print("[%5.0fs] %s" % (time.perf_counter() - started, msg), flush=True)

    results: list[Result] = []
    base = baseline(work)
    say("baseline: ansible-playbook with no task: wall %.1fs cpu %.1fs" % (base.wall_s, base.cpu_s))
    for case in CASES:
        for n in sizes:
            if case == "a" or loop_items(case, n) <= args.max_items:
                r = measure(case, n, args.delay, work)
                results.append(r)
                say(
                    "(%s) N=%d: %d commands, %d requests, %s, cpu %.1fs, wall %.1fs"
                    % (case, n, r.commands, r.requests, human_bytes(r.bytes_to_host), r.cpu_s, r.wall_s)
                )
        for n in sizes:
            if case != "a" and loop_items(case, n) > args.max_items and any(r.case == case for r in results):
                r = extrapolate(results, case, n)
                results.append(r)
                say("(%s) N=%d: extrapolated (%d items), wall ~%.0fs" % (case, n, r.items, r.wall_s))

    scale = None
    if args.scale:
        r = measure("a", args.scale, args.delay, work)
        scale = asdict(r)
        say(
            "scale: %d VMs x 6 ICs in one task: wall %.1fs, cpu %.1fs, peak RSS %.0f MB"
            % (r.n, r.wall_s, r.cpu_s, r.maxrss_mb)
        )
    linux = None
    if not args.no_linux:
        linux = linux_guest(work)
        for row in linux:
            say("linux guest, %s: wall %.1fs cpu %.1fs" % (row["run"], row["wall_s"], row["cpu_s"]))

    report = {
        "command": " ".join(["bash scripts/benchmark.sh", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "delay": args.delay,
        "load": load_note(),
        "baseline": asdict(base),
        "results": [asdict(r) for r in results],
        "scale": scale,
        "linux": linux,
        "total_s": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (args.out / "results.md").write_text(markdown(report), encoding="utf-8")
    plot(report, args.out / "plot.png")
    print()
    print(markdown(report))
    print("written: %s, %s, %s" % (args.out / "results.md", args.out / "results.json", args.out / "plot.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
