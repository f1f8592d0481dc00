"""Real clusters for the launcher tests: a one-node SLURM cluster and a loopback network namespace.

SLURM: Debian's slurm-wlm and munge (`make cluster-packages` installs them as root, as CI
runs). munged, slurmctld and slurmd run as this user's processes from a folder of the
test's own (config, key, state, spool, logs, sockets), on 127.0.0.1 with free ports, and
are stopped by PID afterwards. Nothing under /etc is read or written.

Network namespace: Ray advertises the machine's own address, never loopback (it replaces
127.0.0.1 with the address it would use to reach other hosts). A namespace with only its
own loopback interface gives Ray nothing else, so a multi-node Ray cluster runs there on
127.0.0.1 alone, and no packet leaves it.

Ray on one machine: `ray stop --force` (the Ray cluster test's clean-up) stops every Ray
process on the machine, whoever started it. The tests that start Ray hold RAY_LOCK while
they run, so two never overlap: not on two pytest-xdist workers, not in two checkouts' runs.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RAY_LOCK = Path(tempfile.gettempdir()) / "t2i-bench-tests-ray.lock"
SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo")
START_DEADLINE_S = 120.0  # how long a loaded machine may take to bring the daemons up (not a timing test)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root here (CI runs as root); not root: skipped")


@dataclass
class SlurmCluster:
    folder: Path
    conf: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


def _wait_for(check: object, what: str, logs: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.25)
    tails = "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(logs.glob("*")))
    raise RuntimeError(f"{what} did not start within {START_DEADLINE_S:.0f} s\n{tails}")


def _slurm_conf(folder: Path, host: str, ctld_port: int, slurmd_port: int, munge_socket: Path) -> str:
    return f"""ClusterName=bench
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/logs/slurmctld.log
SlurmdLogFile={folder}/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@contextmanager
def slurm_cluster(folder: Path) -> Iterator[SlurmCluster]:
    """munged + slurmctld + slurmd on 127.0.0.1 (2 CPUs, partition `debug`), stopped by PID on exit."""
    need_root("a SLURM cluster (slurmd runs jobs as any user)")
    missing = [b for b in SLURM_BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): `make cluster-packages` as root")
    for sub in ("munge", "state", "spool", "logs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "munge").chmod(0o711)  # munged refuses a socket folder others cannot traverse
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = folder / "munge" / "munge.sock"
    host = socket.gethostname()
    conf = folder / "slurm.conf"
    conf.write_text(_slurm_conf(folder, host, free_port(), free_port(), munge_socket), encoding="utf-8")
    cluster = SlurmCluster(folder=folder, conf=conf)
    env = {**os.environ, **cluster.env}
    logs = folder / "logs"

    def start(*argv: str, log: str) -> None:
        out = (logs / log).open("wb")
        cluster.processes.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env))

    try:
        start(
            "munged", "-F", "-f", f"--key-file={key}", f"--socket={munge_socket}",
            f"--pid-file={folder}/munge/munged.pid", f"--seed-file={folder}/munge/seed",
            f"--log-file={logs}/munged.log", log="munged.out",
        )  # fmt: skip
        _wait_for(munge_socket.exists, "munged", logs)
        start("slurmctld", "-D", "-i", "-f", str(conf), log="slurmctld.out")
        start("slurmd", "-D", "-f", str(conf), log="slurmd.out")

        def idle() -> bool:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            return state.returncode == 0 and state.stdout.strip() == "idle"

        _wait_for(idle, "the SLURM node", logs)
        yield cluster
    finally:
        stop(cluster.processes)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


@contextmanager
def loopback_namespace() -> Iterator[list[str]]:
    """A network namespace with only `lo` (up); yields the command prefix that runs inside it."""
    need_root("a network namespace")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed (`ip`): `make cluster-packages` as root")
    name = f"t2i-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@contextmanager
def ray_to_itself() -> Iterator[None]:
    """Wait until no other test on this machine runs Ray, and keep it so until the block ends."""
    with RAY_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, even if the test dies
        yield
