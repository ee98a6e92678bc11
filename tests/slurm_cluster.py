"""A real one-node SLURM cluster for the tests (session-scoped fixture ``slurm_cluster``).

Started when ``slurmctld`` is installed (Debian: ``apt-get install slurm-wlm``), as the
user running the tests (root in CI: ``SlurmUser=root``). Everything it needs lives in a
fresh temp folder: ``slurm.conf`` (one node named ``hostname -s`` with the CPUs and
``RealMemory`` that ``slurmd -C`` reports, partition ``debug``, accounting off), the state,
spool, pid and log files, and a private ``munged`` with its own socket and key, so that a
system munged or another cluster on this machine does not matter. The ports are free ones
picked at start. Tests talk to it through the environment ``cluster.env`` (``SLURM_CONF``).

At the end it cancels the jobs still queued there, then stops exactly the three daemons it
started, by pid (``munged``, ``slurmctld`` and ``slurmd`` run in the foreground as its
children). Should the test process die first (SIGKILL, a CI timeout), the daemons get
SIGTERM from the kernel (``PR_SET_PDEATHSIG``).

Run by hand (``python tests/slurm_cluster.py``) it starts a cluster, prints its
``SLURM_CONF`` and stops it on Enter or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PARTITION = "debug"
START_TIMEOUT_S = 120  # idle within about 5 s here; a loaded machine may need more
DAEMONS = ("munged", "slurmctld", "slurmd")
CRED_EXPIRE_S = 10  # SLURM requeues a job that many seconds (+1) later; its default of 120 s would make the tests slow


@dataclass
class SlurmCluster:
    """A running one-node cluster: what a test needs to submit to it."""

    root: Path
    partition: str
    node: str
    cpus: int
    real_memory_mb: int
    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def environ(self, **extra: str) -> dict[str, str]:
        """os.environ with this cluster's settings (for subprocesses that call sbatch, squeue, scancel, ...)."""
        return {**os.environ, **self.env, **extra}

    def run(self, *command: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, env=self.environ())
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def jobs(self) -> list[dict[str, str]]:
        """squeue's jobs: id (``<array>_<task>`` for array tasks), state, reason and restart count."""
        out = self.run("squeue", "-h", "-a", "-r", "-o", "%i|%T|%r|%j").stdout
        rows = []
        for line in out.splitlines():
            if line.strip():
                job_id, state, reason, name = line.split("|", 3)
                rows.append({"id": job_id, "state": state, "reason": reason, "name": name})
        return rows

    def cancel_all(self, timeout: float = 60) -> None:
        """Cancel every job of this cluster and wait until the queue is empty."""
        self.run("scancel", "--full", "-u", _user(), check=False)
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.5)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def slurm_missing() -> str | None:
    """Why no cluster can start here, or None when SLURM and munge are installed."""
    missing = [tool for tool in (*DAEMONS, "sinfo", "sbatch", "scontrol", "squeue", "scancel", "srun")
               if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]
    if missing:
        return (f"SLURM is not installed here ({', '.join(missing)} not found). Fix: apt-get install slurm-wlm "
                "(Debian: slurmctld, slurmd, slurm-client and munge); CI installs it.")
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (bound once and released, all at the same time so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _node_hardware() -> dict[str, str]:
    """``slurmd -C``'s NodeName line as a dict (CPUs, Boards, SocketsPerBoard, ..., RealMemory)."""
    out = subprocess.run([_tool("slurmd"), "-C"], capture_output=True, text=True, timeout=60).stdout
    first = next((line for line in out.splitlines() if line.startswith("NodeName=")), "")
    fields = dict(item.split("=", 1) for item in first.split() if "=" in item)
    fields.setdefault("CPUs", str(os.cpu_count() or 1))
    fields.setdefault("RealMemory", "1024")
    return fields


def _munge_key(root: Path) -> Path:
    """This cluster's own munge key (mungekey, create-munge-key, or 1024 random bytes), mode 0400."""
    key = root / "munge" / "munge.key"
    key.parent.mkdir(mode=0o700)
    if shutil.which("mungekey") or Path("/usr/sbin/mungekey").exists():
        subprocess.run([_tool("mungekey"), "--create", "--keyfile", str(key)], check=True, capture_output=True,
                       timeout=60)
    elif shutil.which("create-munge-key") or Path("/usr/sbin/create-munge-key").exists():
        subprocess.run([_tool("create-munge-key"), "-f"], check=True, capture_output=True, timeout=60)
        system_key = Path("/etc/munge/munge.key")
        shutil.copyfile(system_key, key)
    else:
        key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    return key


def write_conf(root: Path, node: str, hardware: dict[str, str], ports: list[int], munge_socket: Path) -> Path:
    cpus = hardware["CPUs"]
    layout = " ".join(f"{k}={hardware[k]}" for k in ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
                      if k in hardware)
    # leave some memory to the machine: a job asking for more than the node has never starts
    memory = max(512, int(int(hardware["RealMemory"]) * 0.9))
    user = _user()
    text = f"""\
# one-node test cluster (tests/slurm_cluster.py)
ClusterName=optbench-test
SlurmctldHost={node}
SlurmUser={user}
SlurmdUser=root
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again cred_expire + 1 s after its requeue (SLURM's default: 120 s)
AuthInfo=socket={munge_socket},cred_expire={CRED_EXPIRE_S}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=300
KillWait=30
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName={node} CPUs={cpus} {layout} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    conf = root / "slurm.conf"
    conf.write_text(text)
    return conf


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start(name: str, command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = open(log, "ab")
    try:
        # a new session: a Ctrl-C in the terminal is the tests', not theirs; and no daemon outlives
        # the test process, even one killed before its fixture could stop them
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        handle.close()


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running_cluster(base: Path | None = None):
    """Start a one-node cluster in a fresh temp folder; yield a :class:`SlurmCluster`; stop it."""
    root = Path(tempfile.mkdtemp(prefix="optbench-slurm-", dir=base))
    root.chmod(0o755)
    for sub in ("state", "spool", "log", "run"):
        (root / sub).mkdir()
    node = socket.gethostname().split(".")[0]
    hardware = _node_hardware()
    munge_socket = root / "run" / "munge.socket"
    conf = write_conf(root, node, hardware, _free_ports(2), munge_socket)
    env = {"SLURM_CONF": str(conf)}
    full_env = {**os.environ, **env}
    cluster = SlurmCluster(root=root, partition=PARTITION, node=node, cpus=int(hardware["CPUs"]),
                           real_memory_mb=int(hardware["RealMemory"]), env=env)
    procs: dict[str, subprocess.Popen] = {}
    try:
        key = _munge_key(root)
        procs["munged"] = _start("munged", [
            _tool("munged"), "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
            f"--pid-file={root}/run/munged.pid", f"--log-file={root}/log/munged.log",
            f"--seed-file={root}/munge/munged.seed"], root / "log" / "munged.out", full_env)
        _wait_for(lambda: munge_socket.exists(), "munged's socket", procs, root)
        procs["slurmctld"] = _start("slurmctld", [_tool("slurmctld"), "-D", "-i", "-f", str(conf)],
                                    root / "log" / "slurmctld.out", full_env)
        procs["slurmd"] = _start("slurmd", [_tool("slurmd"), "-D", "-f", str(conf), "-N", node],
                                 root / "log" / "slurmd.out", full_env)
        cluster.pids = {name: proc.pid for name, proc in procs.items()}

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%t"], capture_output=True, text=True,
                                 timeout=30, env=full_env).stdout.split()
            return out == ["idle"]

        _wait_for(idle, f"partition {PARTITION} idle in sinfo", procs, root)
        yield cluster
    finally:
        if "slurmctld" in procs and procs["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                cluster.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):  # the reverse of their start
            if name in procs:
                _stop(procs[name])
        if os.environ.get("OPTBENCH_KEEP_SLURM") != "1":
            shutil.rmtree(root, ignore_errors=True)


def _wait_for(ready, what: str, procs: dict[str, subprocess.Popen], root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}. Its log:\n"
                                   f"{_tail(root / 'log' / f'{name}.log')}\n{_tail(root / 'log' / f'{name}.out')}")
        if ready():
            return
        time.sleep(0.5)
    logs = "\n".join(f"--- {name}\n{_tail(root / 'log' / f'{name}.log')}" for name in procs)
    raise RuntimeError(f"timed out after {START_TIMEOUT_S} s waiting for {what}.\n{logs}")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running one-node SLURM cluster for the whole test session; skipped only where SLURM is absent."""
    reason = slurm_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM tests: {reason}")
        pytest.skip(reason)
    # short, world-readable paths: munge's socket path must stay under ~100 bytes
    with running_cluster() as cluster:
        yield cluster


if __name__ == "__main__":
    reason = slurm_missing()
    if reason:
        raise SystemExit(reason)
    with running_cluster() as cluster:
        print(f"export SLURM_CONF={cluster.conf}   # partition {cluster.partition}, pids {cluster.pids}", flush=True)
        with contextlib.suppress(KeyboardInterrupt, EOFError):
            input("Enter stops the cluster\n")
