"""The supervised embedded OpenBao: restarted when it dies, unsealed when it comes back sealed, and never
stopped or killed by a process that merely uses it (an admin command run beside the service)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keys import KeyType, TransitKeyStore, VaultConnection, VaultCredentials, VaultUnavailable
from keys.openbao import ManagedOpenBao, free_port
from keys.supervisor import OpenBaoSupervisor

DIGEST = hashlib.sha256(b"still signing").digest()


def _until(condition: Callable[[], bool], what: str, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within:.0f} s")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[OpenBaoSupervisor, TransitKeyStore]]:
    server = ManagedOpenBao(tmp_path / "openbao", port=free_port())
    supervisor = OpenBaoSupervisor(server, interval=0.2, max_backoff=2)
    credentials = supervisor.start(claim_wait=0)
    yield supervisor, TransitKeyStore(VaultConnection(server.addr, credentials, timeout=3))
    supervisor.stop()


def test_a_killed_server_is_restarted_and_the_same_store_signs_again(
    supervised: tuple[OpenBaoSupervisor, TransitKeyStore],
) -> None:
    supervisor, store = supervised
    info = store.create("survives-a-crash", KeyType.EC_P256)
    first = supervisor.server.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    _until(lambda: supervisor.restarts == 1 and supervisor.server.health().ready, "restarted")
    assert supervisor.server.pid != first and _alive(supervisor.server.pid or 0)
    assert store.sign(info.latest, DIGEST).key.version == 1  # same token, same store: no ecert restart


def test_a_sealed_server_is_unsealed(supervised: tuple[OpenBaoSupervisor, TransitKeyStore]) -> None:
    supervisor, store = supervised
    info = store.create("survives-a-seal", KeyType.EC_P256)
    pid = supervisor.server.pid
    supervisor.server.seal()
    _until(lambda: supervisor.unseals >= 1 and supervisor.server.health().ready, "unsealed")
    assert supervisor.server.pid == pid and supervisor.restarts == 0
    assert store.sign(info.latest, DIGEST).key.version == 1


def test_a_second_owner_is_refused_with_a_clear_message(supervised: tuple[OpenBaoSupervisor, TransitKeyStore]) -> None:
    supervisor, _ = supervised
    rival = OpenBaoSupervisor(ManagedOpenBao(supervisor.server.directory, port=free_port()))
    with pytest.raises(VaultUnavailable, match=f"another ecert process \\(pid {os.getpid()}\\)"):
        rival.start(claim_wait=0)
    assert supervisor.server.health().ready


def test_a_user_waits_for_a_hung_server_and_never_kills_it(
    supervised: tuple[OpenBaoSupervisor, TransitKeyStore],
) -> None:
    supervisor, store = supervised
    pid = supervisor.server.pid
    assert pid is not None
    user = ManagedOpenBao(supervisor.server.directory, port=free_port())  # another port: it finds the real one
    outcome: dict[str, object] = {}

    def attach() -> None:
        try:
            outcome["credentials"] = user.start(timeout=120)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    os.kill(pid, signal.SIGSTOP)  # a hung OpenBao: alive, answers nothing
    try:
        thread = threading.Thread(target=attach)
        thread.start()
        time.sleep(5)  # longer than the old 3 s health check after which it was SIGKILLed
        assert _alive(pid) and "error" not in outcome
    finally:
        os.kill(pid, signal.SIGCONT)
    thread.join()
    assert isinstance(outcome.get("credentials"), VaultCredentials), outcome
    assert not user.owner and user.port == supervisor.server.port
    user.stop()  # it did not start the server, so it leaves it running
    assert _alive(pid) and supervisor.server.pid == pid and supervisor.restarts == 0
    assert supervisor.server.health().ready
    assert store.create("after-the-hang", KeyType.EC_P256).latest_version == 1


def test_a_user_gives_up_on_a_hung_server_with_a_clear_message_and_leaves_it(
    supervised: tuple[OpenBaoSupervisor, TransitKeyStore],
) -> None:
    supervisor, _ = supervised
    pid = supervisor.server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(VaultUnavailable, match=f"belongs to a running ecert process \\(pid {os.getpid()}\\)"):
            ManagedOpenBao(supervisor.server.directory).start(timeout=4)
        assert _alive(pid)
    finally:
        os.kill(pid, signal.SIGCONT)
    _until(lambda: supervisor.server.health().ready, "ready again")
    assert supervisor.server.pid == pid and supervisor.restarts == 0


def test_the_server_is_known_by_its_absolute_directory(
    supervised: tuple[OpenBaoSupervisor, TransitKeyStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor, _ = supervised
    pid = supervisor.server.pid
    monkeypatch.chdir(supervisor.server.directory.parent)
    assert ManagedOpenBao(Path("openbao")).running_pid() == pid  # relative path, same directory
    other = tmp_path / "elsewhere" / "openbao"
    other.mkdir(parents=True)
    (other / "openbao.pid").write_text(str(pid))  # a stale pid file naming another directory's server
    assert ManagedOpenBao(other).running_pid() is None
