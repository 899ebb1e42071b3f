"""A real single-node SLURM cluster for the integration tests (test support code, not a mock).

`SlurmCluster` installs Debian's `slurm-wlm`, `slurmdbd`, `munge` and `mariadb-server` with
apt-get when they are missing (needs root), then starts private instances of every daemon on
loopback only: munged (own key and socket), MariaDB (own data directory) behind slurmdbd (so
`sacct` and the SLURM executor plugin's default status command work), slurmctld and one slurmd.
Everything lives in a temporary directory and on free ports; nothing is written to /etc. The
node offers two *count-only* GPUs (`Gres=gpu:2`, no device files) in a `gpu` partition, so
`--gpus=N` requests are scheduled and accounted exactly as on a GPU cluster while the job itself
runs on the CPU. Clients (sbatch, squeue, sacct, snakemake) find the cluster through
`cluster.env` (`SLURM_CONF`). Daemons are stopped by PID in `stop()`, also after failures.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "slurmdbd", "munge", "mariadb-server"]
BINARIES = ["slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "sinfo", "munged",
            "mungekey", "mariadbd", "mariadb-install-db", "mariadb"]
CLUSTER = "ecemtest"
ACCOUNT = "ecemtest"
CPU_PARTITION = "ecem_cpu"
GPU_PARTITION = "ecem_gpu"
NODE = "ecemnode"
GPUS_PER_NODE = 2
# The SLURM executor's job step strips SLURM_* (SLURM_CONF too) before its nested `srun`, so the
# job step only finds the cluster through the compiled-in default path.
DEFAULT_CONF = "/etc/slurm/slurm.conf"


class SlurmUnavailable(RuntimeError):
    """This machine cannot run the test cluster; the message says exactly why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cmd: list[str], env: dict | None = None, timeout: float = 120, **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, **kw)
    if proc.returncode != 0:
        raise SlurmUnavailable(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def ensure_installed() -> None:
    """Install the Debian packages unless every binary is already there (root + apt needed)."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"SLURM test cluster: {', '.join(missing)} missing and not running as "
                               f"root, so `apt-get install {' '.join(PACKAGES)}` is impossible")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"SLURM test cluster: {', '.join(missing)} missing and no apt-get "
                               "(not a Debian/Ubuntu machine)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], env=env, timeout=300)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], env=env,
         timeout=600)
    still = [b for b in BINARIES if shutil.which(b) is None]
    if still:
        raise SlurmUnavailable(f"apt-get installed {PACKAGES} but {still} are still missing")


class SlurmCluster:
    """Start with `with SlurmCluster() as cluster:`; `cluster.env` is the client environment."""

    def __init__(self, root: Path | None = None, startup_timeout: float = 90) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="ecem-slurm-"))
        self.startup_timeout = startup_timeout
        self.procs: dict[str, subprocess.Popen] = {}
        self.host = socket.gethostname().split(".")[0]
        self.ports = {name: _free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mysql")}
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "etc/slurm.conf")}
        for var in [v for v in self.env if v.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_"))]:
            if var != "SLURM_CONF":
                del self.env[var]

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        ensure_installed()
        for sub in ("etc", "log", "run", "state", "spool", "munge", "db"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self._start_mariadb()
        self._write_slurm_conf()
        self._link_default_conf()
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait(lambda: self._ok(["sacctmgr", "-n", "list", "cluster"]), "slurmdbd",
                   "slurmdbd")
        _run(["sacctmgr", "-i", "add", "cluster", CLUSTER], env=self.env)
        _run(["sacctmgr", "-i", "add", "account", ACCOUNT, "Description=ecem tests",
              "Organization=ecem"], env=self.env)
        _run(["sacctmgr", "-i", "add", "user", "root", f"Account={ACCOUNT}"], env=self.env)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE])
        self._wait(self._node_idle, "node idle", "slurmd")

    def stop(self) -> None:
        """Cancel jobs, then stop every daemon this object started, by PID (reverse order)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True,
                           timeout=30)
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()
        link = Path(DEFAULT_CONF)
        if link.is_symlink() and os.readlink(link) == str(self.root / "etc/slurm.conf"):
            link.unlink()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- client helpers --------------------------------------------------------------------
    def run(self, *cmd: str, timeout: float = 60) -> str:
        return _run(list(cmd), env=self.env, timeout=timeout)

    def sacct(self, *fields: str) -> list[dict[str, str]]:
        """Every job (allocation, not steps) the accounting database knows, as dicts of `fields`."""
        out = self.run("sacct", "-a", "-X", "-P", "-n", "--starttime", "2000-01-01",
                       "-o", ",".join(fields))
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        text = []
        for path in sorted((self.root / "log").glob("*")):
            text.append(f"==> {path.name} <==\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(text)

    # --- internals -------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def _ok(self, cmd: list[str]) -> bool:
        try:
            return subprocess.run(cmd, env=self.env, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _node_idle(self) -> bool:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True,
                              text=True, timeout=10)
        return proc.returncode == 0 and proc.stdout.split() != [] and set(proc.stdout.split()) == {
            "idle"}

    def _wait(self, ready, what: str, *daemons: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            for name in self.procs:
                if self.procs[name].poll() is not None:
                    raise SlurmUnavailable(f"{name} exited ({self.procs[name].returncode}) while "
                                           f"waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.3)
        raise SlurmUnavailable(f"timed out after {self.startup_timeout}s waiting for {what} "
                               f"({', '.join(daemons)}):\n{self.logs()}")

    def _link_default_conf(self) -> None:
        link = Path(DEFAULT_CONF)
        if link.is_symlink() and not link.exists():
            link.unlink()  # left behind by a killed test run
        if link.exists() or link.is_symlink():
            raise SlurmUnavailable(f"{DEFAULT_CONF} already exists (a real SLURM installation or "
                                   "another test cluster); refusing to replace it")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(self.root / "etc/slurm.conf")

    def _start_munge(self) -> None:
        # libmunge clients (sacctmgr's slurmdbd connection among them) only use the default
        # socket, so munged must listen there; reuse one that already answers.
        self.munge_socket = Path("/run/munge/munge.socket.2")
        if self._ok(["munge", "-n"]):
            return
        munge = self.root / "munge"
        os.chmod(munge, 0o700)
        key = munge / "munge.key"
        _run(["mungekey", "-c", "-k", str(key)])
        self.munge_socket.parent.mkdir(parents=True, exist_ok=True)
        self._spawn("munged", ["munged", "-F", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={key}", f"--log-file={self.root / 'log/munged.log'}",
                               f"--pid-file={munge / 'munged.pid'}",
                               f"--seed-file={munge / 'munged.seed'}"])
        self._wait(lambda: self._ok(["munge", "-n"]), "munged", "munged")

    def _start_mariadb(self) -> None:
        data = self.root / "db"
        _run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
              "--auth-root-authentication-method=normal", "--skip-test-db"], timeout=180)
        self.mysql_socket = self.root / "run/mysql.sock"
        self._spawn("mariadbd", ["mariadbd", "--no-defaults", f"--datadir={data}", "--user=root",
                                 f"--socket={self.mysql_socket}", f"--port={self.ports['mysql']}",
                                 "--bind-address=127.0.0.1", "--skip-name-resolve",
                                 f"--pid-file={self.root / 'run/mysql.pid'}",
                                 f"--log-error={self.root / 'log/mariadb.log'}",
                                 "--innodb-buffer-pool-size=64M"])
        sql = ["mariadb", "--no-defaults", "-uroot", f"--socket={self.mysql_socket}"]
        self._wait(lambda: self._ok([*sql, "-e", "SELECT 1"]), "MariaDB", "mariadbd")
        self.db_password = secrets.token_hex(8)
        _run([*sql, "-e", f"CREATE DATABASE IF NOT EXISTS slurm_acct_db; "
                          f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}'; "
                          f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"])

    def _write_slurm_conf(self) -> None:
        cpus = os.cpu_count() or 1
        mem_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 - 1024
        r = self.root
        node = (f"NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={self.host} CPUs={cpus} "
                f"RealMemory={mem_mb} Gres=gpu:{GPUS_PER_NODE} State=UNKNOWN")
        common = f"""ClusterName={CLUSTER}
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ports['slurmctld']}
SlurmdPort={self.ports['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'run/slurmctld.pid'}
SlurmdPidFile={r / 'run/slurmd.pid'}
SlurmctldLogFile={r / 'log/slurmctld.log'}
SlurmdLogFile={r / 'log/slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports['slurmdbd']}
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
GresTypes=gpu
{node}
PartitionName={CPU_PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes={NODE} MaxTime=INFINITE State=UP
"""
        (r / "etc/slurm.conf").write_text(common)
        # slurmd drops file-less GPUs, so each fake GPU is a device node (a copy of /dev/null).
        (r / "dev").mkdir(exist_ok=True)
        for i in range(GPUS_PER_NODE):
            if not (r / f"dev/nvidia{i}").exists():
                os.mknod(r / f"dev/nvidia{i}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        (r / "etc/gres.conf").write_text(
            f"NodeName={NODE} Name=gpu File={r}/dev/nvidia[0-{GPUS_PER_NODE - 1}]\n")
        dbd = r / "etc/slurmdbd.conf"
        dbd.write_text(f"""AuthType=auth/munge
DbdHost={self.host}
DbdAddr=127.0.0.1
DbdPort={self.ports['slurmdbd']}
SlurmUser=root
PidFile={r / 'run/slurmdbd.pid'}
LogFile={r / 'log/slurmdbd.log'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mysql']}
StorageUser=slurm
StoragePass={self.db_password}
StorageLoc=slurm_acct_db
""")
        os.chmod(dbd, 0o600)
