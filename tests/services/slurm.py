"""A real single-node SLURM cluster with accounting, for integration tests.

`SlurmCluster(folder)` runs munged, MariaDB, slurmdbd, slurmctld and slurmd as root on
127.0.0.1, each in the foreground as a child process, with every conf, state, spool, log and
database file under ``folder`` and free TCP ports, so that clusters in different folders share
nothing. UNIX sockets go to a short folder under /tmp when ``folder`` is too long for them.
Clients (sinfo, sacct, submitit) find the cluster through ``SLURM_CONF`` in `SlurmCluster.env`.
The recipe is the one measured in the shared ENVIRONMENT.md ("A real SLURM cluster on one
machine").
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from scale_lth.orchestration.ray_cluster import free_port, free_ports
from tests.waiting import wait_for

CLUSTER_NAME = "lth"
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 10
MAX_SOCKET_FOLDER_CHARS = 60  # leaves room for socket names within the 107-byte limit


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def node_line() -> str:
    """This machine's node line from `slurmd -C`, named localhost on 127.0.0.1."""
    described = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    line = described.stdout.splitlines()[0]
    return re.sub(r"^NodeName=\S+", "NodeName=localhost NodeAddr=127.0.0.1", line)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SlurmCluster:
    """A real single-node SLURM cluster with accounting, private to one folder, on loopback.
    Subclasses name other nodes (``node_lines``, ``start_slurmd``) and another address for the
    controller."""

    partition = "debug"
    controller = ("localhost", "127.0.0.1")  # slurmctld's host name and the address it binds

    @property
    def spool(self) -> Path:
        """slurmd's spool folder (its job steps' sockets go there: keep it short)."""
        return self.folder / "spool"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        self.logs = self.folder / "logs"
        self.conf = self.folder / "etc" / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.node = node_line()
        self.cpus = int(re.search(r"\bCPUs=(\d+)", self.node).group(1))
        self.processes: dict[str, subprocess.Popen] = {}
        self.socket_folder: Path | None = None

    @property
    def pids(self) -> dict[str, int]:
        """The PID of each daemon started, by name."""
        return {name: process.pid for name, process in self.processes.items()}

    def start(self) -> "SlurmCluster":
        try:
            self.make_folders()
            self.start_munged()
            self.start_mariadb()
            self.write_confs()
            self.start_slurmdbd()
            self.add_cluster()
            self.start_slurmctld()
            self.start_slurmd()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        slurmds = [name for name in self.processes if name.split("-")[0] == "slurmd"]
        if "slurmctld" in self.processes and slurmds:
            self.cancel_jobs()
        for name in reversed(list(self.processes)):
            stop_process(self.processes.pop(name))
        if self.socket_folder is not None:
            shutil.rmtree(self.socket_folder, ignore_errors=True)
            self.socket_folder = None

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def make_folders(self) -> None:
        for sub in ("etc", "logs", "state", "spool", "run", "munge", "mysql"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        if len(str(self.folder)) > MAX_SOCKET_FOLDER_CHARS:
            self.socket_folder = Path(tempfile.mkdtemp(prefix="slurm-"))
        self.sockets = self.socket_folder or self.folder / "run"
        self.munge_socket = self.sockets / "munge.socket"
        self.mysql_socket = self.sockets / "mysql.socket"

    def run(self, *command: str) -> subprocess.CompletedProcess:
        """Run a client command against this cluster; raise with its output if it fails."""
        done = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
        return done

    def succeeds(self, *command: str) -> bool:
        return subprocess.run(command, env=self.env, capture_output=True).returncode == 0

    def launch(self, name: str, *command: str, ready, env: dict | None = None) -> None:
        """Start daemon ``name`` in the foreground, its output in logs/NAME.log, and wait until
        ``ready()``; raise RuntimeError with the log's tail if it exits or is not ready in time."""
        log = self.logs / f"{name}.log"
        with open(log, "ab") as output:
            self.processes[name] = subprocess.Popen(
                command, env=env or self.env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; end of {log}:\n{log_tail(log)}")
            time.sleep(0.2)

    def start_munged(self) -> None:
        key = self.folder / "munge" / "munge.key"
        if not key.exists():
            self.run("mungekey", "--create", f"--keyfile={key}")
        self.launch(
            "munged", "munged", "--foreground", "--force", f"--socket={self.munge_socket}",
            f"--key-file={key}", f"--pid-file={self.folder / 'run' / 'munged.pid'}",
            f"--seed-file={self.folder / 'munge' / 'munged.seed'}",
            ready=lambda: self.succeeds("munge", "-n", f"--socket={self.munge_socket}"),
        )  # fmt: skip

    def start_mariadb(self) -> None:
        datadir = self.folder / "mysql"
        if not (datadir / "mysql").exists():
            self.run(
                "mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={datadir}",
                "--skip-test-db",
            )  # fmt: skip
        self.mysql_port = free_port()
        self.launch(
            "mariadbd", "mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}",
            f"--socket={self.mysql_socket}", f"--port={self.mysql_port}",
            "--bind-address=127.0.0.1", "--skip-name-resolve",
            f"--pid-file={self.folder / 'run' / 'mariadbd.pid'}",
            ready=lambda: self.succeeds(
                "mariadb-admin", "--no-defaults", f"--socket={self.mysql_socket}", "ping"
            ),
        )  # fmt: skip
        self.db_password = secrets.token_hex(8)
        self.run(
            "mariadb", "--no-defaults", f"--socket={self.mysql_socket}", "-e",
            f"CREATE OR REPLACE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';",
        )  # fmt: skip

    def write_confs(self) -> None:
        self.dbd_port, self.ctld_port, self.slurmd_port = free_ports(3)
        # NoInAddrAny: each daemon listens on its configured address (127.0.0.1), not on all
        auth = (
            f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
            "CommunicationParameters=NoInAddrAny\n"
        )
        dbd_conf = self.conf.with_name("slurmdbd.conf")
        dbd_conf.write_text(
            auth + "DbdHost=localhost\nDbdAddr=127.0.0.1\n"
            f"DbdPort={self.dbd_port}\nSlurmUser=root\n"
            f"PidFile={self.folder / 'run' / 'slurmdbd.pid'}\n"
            "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
            f"StoragePort={self.mysql_port}\nStorageUser=slurm\n"
            f"StoragePass={self.db_password}\nStorageLoc=slurm_acct_db\n"
        )
        dbd_conf.chmod(0o600)
        controller, address = self.controller
        self.conf.write_text(
            auth + f"ClusterName={CLUSTER_NAME}\nSlurmctldHost={controller}({address})\n"
            "SlurmUser=root\nSlurmdUser=root\nCredType=cred/munge\nMailProg=/bin/true\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherType=jobacct_gather/none\n"
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=localhost\nAccountingStoragePort={self.dbd_port}\n"
            f"AccountingStoragePass=socket={self.munge_socket}\n"  # munge socket to slurmdbd
            f"SlurmctldPort={self.ctld_port}\nSlurmdPort={self.slurmd_port}\n"
            "SchedulerParameters=batch_sched_delay=0\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
            "ReturnToService=2\nKillWait=5\nMinJobAge=300\nJobRequeue=1\nPreemptMode=OFF\n"
            # Job ids unique to this cluster: submitit caches finished jobs' states by id for
            # the whole process, so two clusters must never hand out the same id.
            f"FirstJobId={1000 + secrets.randbelow(600_000) * 100}\n"
            f"StateSaveLocation={self.folder / 'state'}\n"
            f"SlurmdSpoolDir={self.spool}\n"
            f"SlurmctldPidFile={self.folder / 'run' / 'slurmctld.pid'}\n"
            f"SlurmdPidFile={self.folder / 'run' / 'slurmd-%n.pid'}\n"
            + "".join(f"{line}\n" for line in self.node_lines())
            + f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        )

    def on_controller(self, argv: list[str]) -> list[str]:
        """``argv`` run as the controller's host (slurmctld refuses to run elsewhere)."""
        return argv

    def node_lines(self) -> list[str]:
        """slurm.conf's line for each node."""
        return [self.node]

    def start_slurmdbd(self) -> None:
        self.launch("slurmdbd", "slurmdbd", "-D", ready=lambda: port_open(self.dbd_port))

    def add_cluster(self) -> None:
        """Register the cluster in the accounting database, unless a previous start did."""
        known = self.run("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster").stdout
        if CLUSTER_NAME not in known.split():
            self.run("sacctmgr", "-i", "add", "cluster", CLUSTER_NAME)

    def start_slurmctld(self) -> None:
        """slurmctld ignores NoInAddrAny: a preloaded bind() keeps it on its address."""
        shim = self.folder / "run" / "loopback_bind.so"
        if not shim.exists():
            source = Path(__file__).with_name("loopback_bind.c")
            self.run("cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl")
        self.launch(
            "slurmctld", *self.on_controller(["slurmctld", "-D", "-f", str(self.conf)]),
            ready=lambda: port_open(self.ctld_port, self.controller[1]),
            env={**self.env, "LD_PRELOAD": str(shim), "BIND_ADDRESS": self.controller[1]},
        )  # fmt: skip

    def start_slurmd(self) -> None:
        self.launch(
            "slurmd", "slurmd", "-D", "-f", str(self.conf), "-N", "localhost",
            ready=lambda: self.node_idle() and self.succeeds("sacct", "-n", "-X"),
        )  # fmt: skip

    def node_idle(self, name: str = "localhost") -> bool:
        state = subprocess.run(
            ["sinfo", "-h", "-N", "-n", name, "-o", "%t"],
            env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        return state.stdout.strip() == "idle"

    def requeue_and_start_now(self, job_id: str) -> None:
        """``scontrol requeue`` the job, then let it start again at once: SLURM holds a requeued
        job back for a while (pending on its BeginTime), on a user's cluster as here."""
        self.run("scontrol", "requeue", job_id)

        def reason() -> str:
            return self.run("squeue", "-h", "-j", job_id, "-o", "%r").stdout.strip()

        wait_for(lambda: reason() == "BeginTime", 120, "the requeued job to wait for its start")
        self.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")

    def attempts(self, job_id: str) -> list[str]:
        """The accounting's state of each attempt of the job, in order."""
        listed = self.run("sacct", "-j", job_id, "--duplicates", "--noheader", "-X",
                          "--format=State")  # fmt: skip
        return listed.stdout.split()

    def cancel_jobs(self) -> None:
        """Cancel every job and wait (a bounded time) until none is left, so that no job step
        outlives slurmd."""
        subprocess.run(["scancel", f"--partition={self.partition}"], env=self.env)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.jobs_left() and time.monotonic() < deadline:
            time.sleep(0.2)

    def jobs_left(self) -> bool:
        queue = subprocess.run(
            ["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True
        )
        return queue.returncode == 0 and bool(queue.stdout.strip())
