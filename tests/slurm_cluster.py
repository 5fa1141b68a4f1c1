"""A real one-node SLURM on 127.0.0.1, built from Debian's packages, for the cluster tests.

It follows ``shared/SLURM.md`` (the tested recipe for this kind of machine): munge, then
``slurmctld -c``, then ``slurmd``, one node named after ``hostname -s`` with address
127.0.0.1, one partition, no accounting, ``MinJobAge`` long enough for ``squeue``-based status
checks. Every path SLURM writes (config, state, spool, logs, pid files) lies under a fresh
temporary folder owned by the ``slurm`` user; the controller and node daemon use free ports
picked at start (slurmd listens on 127.0.0.1 only; slurmctld 22.05 on every address), and
``SLURM_CONF`` points clients at this cluster only.
The client programs (``srun``, ``sbatch``, …) are also reachable through small wrappers in
``bin_dir`` (put first on ``PATH`` by ``env``) that set ``SLURM_CONF`` themselves: Snakemake's
jobstep plugin removes every ``SLURM_*`` variable, ``SLURM_CONF`` included, before the ``srun``
it runs inside a job, and that ``srun`` must still find this cluster.

munge: a running ``munged`` on the default socket is reused only if ``munge -n | unmunge``
succeeds; otherwise this module starts its own, as the ``munge`` user, on a socket in its own
temporary folder, and names that socket in ``slurm.conf`` (``AuthInfo=socket=…``).

Stopping: jobs whose names start with this run's prefix are cancelled first, then every daemon
this module started is stopped by the pid its own pid file named at start (and only while
``/proc/<pid>`` still runs that program), never by name. A daemon it did not start (such as a
reused munged) is never touched.

Usage::

    problem = slurm_unavailable_reason()   # None when the packages are there and we are root
    with OneNodeSlurm() as slurm:
        job_id = slurm.sbatch("--wrap", "srun -n1 hostname")
        slurm.wait_for_jobs([job_id])
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "OneNodeSlurm",
    "SlurmError",
    "find_program",
    "is_running",
    "munge_answers",
    "slurm_unavailable_reason",
]

DEBIAN_PACKAGES = "slurmctld slurmd slurm-client munge"
REQUIRED_PROGRAMS = (
    "slurmctld",
    "slurmd",
    "sinfo",
    "sbatch",
    "squeue",
    "scancel",
    "scontrol",
    "srun",
    "munged",
    "munge",
    "unmunge",
    "runuser",
)
#: SLURM clients wrapped in ``bin_dir`` so that they find this cluster without SLURM_CONF.
CLIENT_PROGRAMS = ("sbatch", "srun", "salloc", "squeue", "scancel", "sinfo", "scontrol")
MUNGE_KEY = Path("/etc/munge/munge.key")
#: States after which a job no longer runs anything (squeue's long names).
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)


class SlurmError(RuntimeError):
    """The one-node SLURM could not be started, used or stopped; the message says why."""


def slurm_unavailable_reason() -> str | None:
    """Why a one-node SLURM cannot be stood up here, or None when it can be.

    Needs root (the daemons switch users and ``slurmd`` launches jobs), the programs of the
    Debian packages ``slurmctld slurmd slurm-client munge``, the ``slurm`` and ``munge`` users
    and munge's key.
    """
    if os.geteuid() != 0:
        return "a one-node SLURM needs root (the daemons switch to the slurm and munge users)"
    missing = [name for name in REQUIRED_PROGRAMS if find_program(name) is None]
    if missing:
        return (
            f"SLURM/munge programs not found: {', '.join(missing)} "
            f"(apt-get install --no-install-recommends {DEBIAN_PACKAGES})"
        )
    for user in ("slurm", "munge"):
        if _run(["id", "-u", user]).returncode != 0:
            return f"no '{user}' user (it comes with the Debian packages {DEBIAN_PACKAGES})"
    if not MUNGE_KEY.exists():
        return f"munge key {MUNGE_KEY} is missing (the munge package creates it)"
    return None


def munge_answers(socket_path: Path | None = None, timeout: float = 5.0) -> bool:
    """True when ``munge -n | unmunge`` succeeds (against ``socket_path``, or the default)."""
    socket_args = ["--socket", str(socket_path)] if socket_path is not None else []
    try:
        credential = subprocess.run(
            ["munge", "-n", *socket_args], capture_output=True, timeout=timeout, check=False
        )
        if credential.returncode != 0:
            return False
        decoded = subprocess.run(
            ["unmunge", *socket_args],
            input=credential.stdout,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return decoded.returncode == 0


@dataclass(frozen=True)
class _Daemon:
    """A daemon this module started: its program name (as in /proc/<pid>/comm) and pid file."""

    name: str
    pid_file: Path
    pid: int


class OneNodeSlurm:
    """A private one-node SLURM cluster, started by :meth:`start` and stopped by :meth:`stop`.

    Attributes set by :meth:`start`: ``root`` (the temporary folder), ``slurm_dir`` (owned by
    ``slurm``: ``slurm.conf``, state, spool, logs, pids), ``conf`` (``slurm.conf``),
    ``bin_dir`` (client wrappers), ``node`` (``hostname -s``), ``cpus`` and ``real_memory_mb``
    (what the node offers jobs: 80 % of the machine's memory), ``partition``, ``env``
    (``os.environ`` plus ``SLURM_CONF``, and ``bin_dir`` first on ``PATH``),
    ``startup_seconds``; :meth:`stop` sets ``shutdown_seconds``. ``prefix`` is the job-name
    prefix unique to this instance: give it to every job you submit, so that :meth:`stop`
    cancels exactly those.
    """

    def __init__(
        self,
        *,
        partition: str = "cqtest",
        prefix: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 20.0,
        min_job_age: int = 300,
    ) -> None:
        self.partition = partition
        self.prefix = prefix or f"cqtest-{uuid.uuid4().hex[:10]}"
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.min_job_age = min_job_age
        self.root: Path | None = None
        self.slurm_dir: Path | None = None
        self.munge_socket: Path | None = None
        self.conf: Path | None = None
        self.bin_dir: Path | None = None
        self.cpus: int | None = None
        self.real_memory_mb: int | None = None
        self.node = _short_hostname()
        self.env: dict[str, str] = dict(os.environ)
        self.startup_seconds: float | None = None
        self.shutdown_seconds: float | None = None
        self._daemons: list[_Daemon] = []
        self._stopped = False

    @property
    def daemon_pids(self) -> dict[str, int]:
        """Program name -> pid of each daemon this instance started and has not stopped."""
        return {daemon.name: daemon.pid for daemon in self._daemons}

    # --- context manager ---------------------------------------------------------------

    def __enter__(self) -> OneNodeSlurm:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- start -------------------------------------------------------------------------

    def start(self) -> None:
        """Stand the cluster up and wait until ``sinfo`` shows the node idle.

        Raises :class:`SlurmError` (with the daemons' log tails) when it does not come up
        within ``start_timeout`` seconds; whatever was started is stopped again first.
        """
        problem = slurm_unavailable_reason()
        if problem:
            raise SlurmError(problem)
        began = time.monotonic()
        atexit.register(self.stop)
        try:
            self._make_folders()
            self._start_munge()
            self._write_config()
            self._write_client_wrappers()
            self._start_daemon("slurmctld", ["-c", "-f", str(self.conf)])
            # slurmd registers once at start and retries only ~10 s later: wait for the
            # controller to answer first.
            self._wait_for_controller(began + self.start_timeout)
            self._start_daemon("slurmd", ["-f", str(self.conf), "-N", self.node])
            self._wait_until_idle(began + self.start_timeout)
        except BaseException as error:
            diagnostics = self._log_tails()
            with contextlib.suppress(Exception):
                self.stop()
            if isinstance(error, SlurmError):
                raise SlurmError(f"{error}\n{diagnostics}") from None
            raise
        self.startup_seconds = time.monotonic() - began

    def _make_folders(self) -> None:
        # The root is root-owned (munged refuses folders owned by anyone but root or munge);
        # everything SLURM writes lies under root/slurm, owned by the slurm user.
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.root.chmod(0o755)
        self.slurm_dir = self.root / "slurm"
        for sub in ("", "state", "spool", "log", "run"):
            (self.slurm_dir / sub).mkdir(exist_ok=True)
        for path in [self.slurm_dir, *self.slurm_dir.iterdir()]:
            shutil.chown(path, "slurm", "slurm")
            path.chmod(0o755)
        self.conf = self.slurm_dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _start_munge(self) -> None:
        if munge_answers():
            self.munge_socket = None  # the machine's munged answers: reuse it, never stop it
            return
        munge_dir = self.root / "munge"
        munge_dir.mkdir()
        shutil.chown(munge_dir, "munge", "munge")
        munge_dir.chmod(0o755)  # munged wants the socket's folder executable by all
        self.munge_socket = munge_dir / "munge.socket"
        pid_file = munge_dir / "munged.pid"
        command = [
            find_program("runuser"),
            "-u",
            "munge",
            "--",
            find_program("munged"),
            f"--socket={self.munge_socket}",
            f"--pid-file={pid_file}",
            f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
            f"--key-file={MUNGE_KEY}",
        ]
        self._launch("munged", command, pid_file)
        deadline = time.monotonic() + 5.0
        while not munge_answers(self.munge_socket):
            if time.monotonic() > deadline:
                raise SlurmError(f"munged started but `munge -n | unmunge` fails on {pid_file}")
            time.sleep(0.1)

    def _write_config(self) -> None:
        controller_port, node_port = _free_ports(2)
        self.cpus = cpus = len(os.sched_getaffinity(0))
        self.real_memory_mb = real_memory_mb = int(_mem_total_kib() / 1024 * 0.8)
        paths = self.slurm_dir
        lines = [
            "# Written by tests/slurm_cluster.py: a private one-node test cluster.",
            f"ClusterName={self.prefix.replace('-', '')[:30].lower()}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={controller_port}",
            f"SlurmdPort={node_port}",
            "SlurmUser=slurm",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            *([f"AuthInfo=socket={self.munge_socket}"] if self.munge_socket else []),
            f"StateSaveLocation={paths / 'state'}",
            f"SlurmdSpoolDir={paths / 'spool'}",
            f"SlurmctldPidFile={paths / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={paths / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={paths / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={paths / 'log' / 'slurmd.log'}",
            "MailProg=/bin/true",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "ReturnToService=2",
            # squeue must still list finished jobs when Snakemake's plugin asks (SLURM.md).
            f"MinJobAge={self.min_job_age}",
            "KillWait=5",
            "InactiveLimit=0",
            # slurmd listens on NodeAddr (127.0.0.1) only; slurmctld 22.05 binds all addresses
            "CommunicationParameters=NoInAddrAny",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} "
            f"RealMemory={real_memory_mb} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        shutil.chown(self.conf, "slurm", "slurm")
        self.conf.chmod(0o644)

    def _write_client_wrappers(self) -> None:
        self.bin_dir = self.slurm_dir / "bin"
        self.bin_dir.mkdir()
        for name in CLIENT_PROGRAMS:
            program = find_program(name)
            if program is None:
                continue
            wrapper = self.bin_dir / name
            wrapper.write_text(
                "#!/bin/sh\n"
                "# tests/slurm_cluster.py: the test cluster's client, even where SLURM_CONF was\n"
                "# removed (Snakemake's jobstep plugin does so before its srun).\n"
                f'SLURM_CONF={shlex.quote(str(self.conf))} exec {shlex.quote(program)} "$@"\n'
            )
            wrapper.chmod(0o755)
        shutil.chown(self.bin_dir, "slurm", "slurm")
        self.env["PATH"] = f"{self.bin_dir}{os.pathsep}{self.env.get('PATH', os.defpath)}"

    def _start_daemon(self, name: str, options: list[str]) -> None:
        pid_file = self.slurm_dir / "run" / f"{name}.pid"
        self._launch(name, [find_program(name), *options], pid_file)

    def _launch(self, name: str, command: list[str], pid_file: Path) -> None:
        """Run a self-daemonising ``command`` and record the pid its pid file names."""
        result = subprocess.run(
            command, capture_output=True, text=True, env=self.env, timeout=30, check=False
        )
        if result.returncode != 0:
            raise SlurmError(
                f"{name} did not start (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        deadline = time.monotonic() + 10.0
        while True:
            pid = _read_pid(pid_file)
            if pid is not None and _process_name(pid) == name:
                self._daemons.append(_Daemon(name, pid_file, pid))
                return
            if time.monotonic() > deadline:
                raise SlurmError(f"{name} started but wrote no live pid to {pid_file}")
            time.sleep(0.05)

    def _wait_for_controller(self, deadline: float) -> None:
        answer = ""
        while time.monotonic() < deadline:
            self._check_daemons_alive()
            result = self.run(["scontrol", "ping"], check=False, timeout=10)
            answer = (result.stdout or result.stderr).strip()
            if result.returncode == 0 and "is UP" in answer:
                return
            time.sleep(0.05)
        raise SlurmError(
            f"slurmctld did not answer within {self.start_timeout:.0f} s "
            f"(last scontrol ping: {answer or 'no answer'})"
        )

    def _check_daemons_alive(self) -> None:
        for daemon in self._daemons:
            if _process_name(daemon.pid) != daemon.name:
                raise SlurmError(f"{daemon.name} (pid {daemon.pid}) exited during start-up")

    def _wait_until_idle(self, deadline: float) -> None:
        state = ""
        while time.monotonic() < deadline:
            self._check_daemons_alive()
            result = self.run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], check=False)
            state = (result.stdout or result.stderr).strip()
            if result.returncode == 0 and state.rstrip("*") == "idle":
                return
            time.sleep(0.2)
        raise SlurmError(
            f"node {self.node} not idle within {self.start_timeout:.0f} s "
            f"(last sinfo: {state or 'no answer'})"
        )

    # --- use ---------------------------------------------------------------------------

    def run(
        self, command: list[str], *, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command against this cluster (``SLURM_CONF`` set)."""
        result = subprocess.run(
            command, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise SlurmError(
                f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.strip()}"
            )
        return result

    def sbatch(self, *args: str, job_name: str | None = None) -> str:
        """Submit with ``sbatch --parsable``; the job name gets this run's prefix. Returns id."""
        name = f"{self.prefix}-{job_name or 'job'}"
        result = self.run(["sbatch", "--parsable", "--job-name", name, *args])
        return result.stdout.strip().split(";")[0]

    def jobs(self) -> dict[str, tuple[str, str]]:
        """This run's jobs that squeue knows (running or finished < MinJobAge ago).

        Maps job id to (name, state).
        """
        result = self.run(["squeue", "-h", "--states=all", "-o", "%i|%j|%T"])
        found = {}
        for line in result.stdout.splitlines():
            job_id, name, state = line.split("|", 2)
            if name.startswith(self.prefix):
                found[job_id] = (name, state)
        return found

    def wait_for_jobs(self, job_ids: list[str], timeout: float = 60.0) -> dict[str, str]:
        """Wait until every job in ``job_ids`` reached a final state; return their states."""
        deadline = time.monotonic() + timeout
        while True:
            states = {job_id: state for job_id, (_, state) in self.jobs().items()}
            if all(states.get(job_id) in FINAL_STATES for job_id in job_ids):
                return {job_id: states[job_id] for job_id in job_ids}
            if time.monotonic() > deadline:
                raise SlurmError(f"jobs not finished within {timeout:.0f} s: {states}")
            time.sleep(0.2)

    def cancel_jobs(self, timeout: float = 15.0) -> list[str]:
        """scancel every unfinished job of this run (by name prefix); wait until they are gone.

        Returns the ids it cancelled.
        """
        live = [job_id for job_id, (_, state) in self.jobs().items() if state not in FINAL_STATES]
        if not live:
            return []
        self.run(["scancel", *live], check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.jobs()
            if all(
                states.get(job_id, ("", "GONE"))[1] in FINAL_STATES | {"GONE"} for job_id in live
            ):
                break
            time.sleep(0.2)
        return live

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of ``slurmctld.log`` or ``slurmd.log``."""
        if self.slurm_dir is None:
            return ""
        path = self.slurm_dir / "log" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _log_tails(self) -> str:
        parts = []
        for name in ("slurmctld", "slurmd"):
            tail = self.log_tail(name, lines=15)
            if tail:
                parts.append(f"--- {name}.log (last lines) ---\n{tail}")
        return "\n".join(parts)

    # --- stop --------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel this run's jobs, stop every daemon started here by its pid, remove the folder.

        Safe to call twice. Raises :class:`SlurmError` if a daemon survives SIGKILL.
        """
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        began = time.monotonic()
        controller_up = any(daemon.name == "slurmctld" for daemon in self._daemons)
        if controller_up:
            with contextlib.suppress(Exception):
                self.cancel_jobs()
        survivors = []
        # Node daemon and controller together, then munged (which they authenticate with).
        for group in (("slurmd", "slurmctld"), ("munged",)):
            daemons = [daemon for daemon in self._daemons if daemon.name in group]
            for daemon in daemons:
                _signal(daemon, signal.SIGTERM)
            survivors += _wait_gone(daemons, self.stop_timeout)
        self._daemons = []
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.shutdown_seconds = time.monotonic() - began
        if survivors:
            raise SlurmError(
                "could not stop: " + ", ".join(f"{d.name} (pid {d.pid})" for d in survivors)
            )


# --- helpers ---------------------------------------------------------------------------


def find_program(name: str) -> str | None:
    """Absolute path of a program on PATH or in the sbin folders (daemons live in /usr/sbin)."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=search)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)


def _short_hostname() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = _run(["hostname", "-s"])
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return socket.gethostname().split(".")[0]


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    raise SlurmError("MemTotal not found in /proc/meminfo")


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _process_name(pid: int) -> str | None:
    """The program name of a live process (``/proc/<pid>/comm``), None if gone or a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ...": comm may hold spaces, the state follows the last ')'.
    if status.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return None
    return status[status.index("(") + 1 : status.rindex(")")]


def is_running(pid: int, name: str) -> bool:
    """True when process ``pid`` is alive (not a zombie) and runs the program ``name``."""
    return _process_name(pid) == name


def _signal(daemon: _Daemon, signum: int) -> None:
    # Only the process we started: the pid must still belong to a program of that name.
    if _process_name(daemon.pid) == daemon.name:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.pid, signum)


def _wait_gone(daemons: list[_Daemon], timeout: float) -> list[_Daemon]:
    """Wait for ``daemons`` to exit, SIGKILL those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    alive = list(daemons)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [daemon for daemon in alive if _process_name(daemon.pid) == daemon.name]
    for daemon in alive:
        _signal(daemon, signal.SIGKILL)
    time.sleep(0.2 if alive else 0)
    return [daemon for daemon in alive if _process_name(daemon.pid) == daemon.name]
