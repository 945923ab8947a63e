"""The gateway's token secret, and the gateway and library on a Redis with ACL users and TLS.

The ACL tests start their own server from ``deploy/redis/users.acl`` (the file
docker-compose.yml runs), with the passwords filled in as
``deploy/redis/start.sh`` does; the TLS test makes its own CA and server
certificate with the ``openssl`` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway import create_app
from ledger import Ledger, LedgerUnavailable, Order, load_policy_file
from ledger.store.connect import RedisSettings, connect
from ledger.store.embedded import free_port
from ledger.store.tokens import DEV_SECRET, Role, TokenStore, hash_token
from tests.conftest import BINARIES, EXAMPLE_POLICY, ROOT
from tests.gateway.conftest import ORDER


def _forge(redis_client: redis.Redis, token: str, digest: str) -> None:
    record = {"name": "mallory", "role": "ops", "desks": [], "created_at_ms": 0}
    redis_client.hset("ledger:tokens", f"t|{digest}", json.dumps(record))


def test_a_gateway_refuses_to_start_without_a_token_secret(redis_url, monkeypatch):
    monkeypatch.delenv("LEDGER_TOKEN_SECRET")
    monkeypatch.delenv("LEDGER_INSECURE_DEV_TOKENS", raising=False)
    with pytest.raises(ValueError, match="LEDGER_TOKEN_SECRET: not set"):
        create_app({"REDIS_URL": redis_url})
    with pytest.raises(ValueError, match="at least 16 characters"):
        create_app({"REDIS_URL": redis_url, "TOKEN_SECRET": "short"})
    monkeypatch.setenv("LEDGER_INSECURE_DEV_TOKENS", "no")
    with pytest.raises(ValueError, match="LEDGER_TOKEN_SECRET: not set"):
        create_app({"REDIS_URL": redis_url})
    monkeypatch.setenv("LEDGER_INSECURE_DEV_TOKENS", "1")
    assert create_app({"REDIS_URL": redis_url}).config["INSECURE_DEV_TOKENS"] == 1


def test_the_secret_is_read_verbatim_from_the_environment(redis_url, monkeypatch):
    # JSON parsing of LEDGER_* would make this the float 1e+21.
    monkeypatch.setenv("LEDGER_TOKEN_SECRET", "1000000000000000000000")
    monkeypatch.setenv("LEDGER_REDIS_PASSWORD", "true")
    app = create_app({"REDIS_URL": redis_url})
    assert app.config["TOKEN_SECRET"] == "1000000000000000000000"
    assert app.config["REDIS_PASSWORD"] == "true"


def test_tls_files_without_rediss_refuse_to_start(redis_url):
    with pytest.raises(ValueError, match="not rediss://"):
        create_app({"REDIS_URL": redis_url, "REDIS_TLS_CA": "/ca.pem"})


def test_a_token_hash_written_straight_into_redis_gets_401(client, ledger, redis_client, auth):
    forged = "llt_" + "F" * 43
    _forge(redis_client, forged, hashlib.sha256(forged.encode()).hexdigest())
    _forge(redis_client, forged, hash_token(forged, DEV_SECRET))
    answer = client.post(
        "/v1/kill",
        json={"scope": "global", "reason": "forged"},
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert answer.status_code == 401
    assert ledger.kills() == []
    assert client.post("/v1/orders", json=ORDER, headers=auth("order-entry")).status_code == 201


# -- a Redis with the ACL users of deploy/redis/users.acl -------------------------------

START = ROOT / "deploy" / "redis" / "start.sh"
ADMIN_PW = "admin-password-for-the-acl-test"
GATEWAY_PW = "gateway-password-for-the-acl-test"


@dataclass
class _Server:
    port: int
    log: Path

    def url(
        self, user: str | None = None, password: str | None = None, scheme: str = "redis"
    ) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"


def _start(args: list[str], env: dict[str, str], log: Path, ping: Callable[[], object]) -> Any:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            ping()
            return proc
        except redis.RedisError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    pytest.fail(f"{args[0]} did not start: {log.read_text() if log.exists() else ''}")


@pytest.fixture(scope="module", params=sorted(BINARIES))
def acl_server(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[_Server]:
    """A server started by deploy/redis/start.sh, as docker-compose.yml starts it."""
    tmp = tmp_path_factory.mktemp("acl")
    port, log = free_port(), tmp / "server.log"
    env = {
        **os.environ,
        "LEDGER_REDIS_ADMIN_PASSWORD": ADMIN_PW,
        "LEDGER_REDIS_GATEWAY_PASSWORD": GATEWAY_PW,
        "LEDGER_REDIS_ACL_FILE": str(tmp / "users.acl"),
        "LEDGER_REDIS_SERVER": BINARIES[request.param],
    }
    args = ["sh", str(START), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--dir", str(tmp), "--logfile", str(log), "--daemonize", "no"]
    # DEBUG enabled, so that it is the ACL that refuses it to the gateway.
    args += ["--enable-debug-command", "yes"]
    probe = redis.Redis(port=port, username="admin", password=ADMIN_PW, socket_timeout=1)
    proc = _start(args, env, log, probe.ping)
    probe.close()
    # Only hashes reach the rendered file, readable by its owner alone.
    rendered = (tmp / "users.acl").read_text()
    assert GATEWAY_PW not in rendered and ADMIN_PW not in rendered
    assert (tmp / "users.acl").stat().st_mode & 0o077 == 0
    yield _Server(port, log)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def admin(acl_server: _Server) -> Iterator[Ledger]:
    """The admin user's ledger on a flushed server with examples/policy.yaml loaded."""
    client = redis.Redis(port=acl_server.port, username="admin", password=ADMIN_PW)
    client.flushall()
    lg = Ledger(client, actor="admin")
    lg.load_policy(load_policy_file(EXAMPLE_POLICY), by="admin")
    yield lg
    client.close()


def _order(order_id: str) -> Order:
    return Order(order_id, "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "100", "187.25")


def test_the_gateway_user_trades_through_the_library_and_the_gateway(acl_server, admin):
    gw = Ledger.from_url(acl_server.url("gateway", GATEWAY_PW), timeout_s=5, actor="gw")
    assert gw.ping()
    assert gw.reserve(_order("o1")).accepted
    assert gw.reserve(_order("o1")).replayed
    gw.fill("o1", fill_id="f1", qty="40", price="187.20")
    gw.release("o1", reason="cancelled")
    for scope in ("global", "desk:EQ-CASH"):
        gw.kill(scope, by="ops-1", reason="drill")
        assert gw.reserve(_order(f"k-{scope}")).reason.value == "KILL_SWITCH"
        gw.unkill(scope, by="ops-1", reason="drill over")
    assert gw.utilization("desk:EQ-CASH")
    tokens = TokenStore(admin.redis)
    oe, ops = tokens.create(Role.ORDER_ENTRY, "oe"), tokens.create(Role.OPS, "ops")

    # The gateway, its credentials in settings rather than in the URL.
    app = create_app(
        {
            "REDIS_URL": acl_server.url(),
            "REDIS_USERNAME": "gateway",
            "REDIS_PASSWORD": GATEWAY_PW,
            "REDIS_TIMEOUT_MS": 5000,
        }
    )
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    # A new id: o1 above is released, and a retry of it is now 409 ORDER_CLOSED.
    fresh = {**ORDER, "order_id": "gw-1"}
    answer = client.post("/v1/orders", json=fresh, headers={"Authorization": f"Bearer {oe}"})
    assert answer.status_code == 201 and answer.json["decision"] == "accepted"
    ops_auth = {"Authorization": f"Bearer {ops}"}
    killed = client.post(
        "/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "r"}, headers=ops_auth
    )
    assert killed.status_code == 200 and killed.json["published"] is True
    assert (
        client.delete(
            "/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "r"}, headers=ops_auth
        ).status_code
        == 200
    )
    assert client.get("/v1/utilization", headers=ops_auth).status_code == 200
    assert admin.check().ok


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "SET", "appendonly", "no"),
        ("CONFIG", "GET", "requirepass"),
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("FUNCTION", "FLUSH"),
        ("KEYS", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "SETUSER", "gateway", "+@all"),
        ("ACL", "LIST"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("MONITOR",),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("HSET", "ledger:tokens", "t|forged", "{}"),
        ("DEL", "ledger:tokens"),
        ("SET", "other:key", "1"),
        ("EVAL", "return redis.call('HSET', KEYS[1], 't|forged', '{}')", "1", "ledger:tokens"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_the_gateway_user_is_refused_what_it_does_not_need(acl_server, admin, command):
    tokens = TokenStore(admin.redis)
    token = tokens.create(Role.RISK_ADMIN, "ra")
    before = sorted(admin.redis.scan_iter())
    gw = redis.Redis(port=acl_server.port, username="gateway", password=GATEWAY_PW)
    with pytest.raises(redis.exceptions.NoPermissionError):
        gw.execute_command(*command)
    # It can still read the tokens, and nothing changed.
    assert gw.hget("ledger:tokens", "n|ra") is not None
    assert sorted(admin.redis.scan_iter()) == before
    assert tokens.lookup(token) is not None
    gw.close()


def test_a_wrong_password_fails_closed(acl_server, admin, monkeypatch):
    monkeypatch.delenv("LEDGER_REDIS_PASSWORD", raising=False)
    before = sorted(admin.redis.scan_iter())
    for url in (acl_server.url("gateway", "wrong-password"), acl_server.url()):
        lg = Ledger.from_url(url, timeout_s=2)
        with pytest.raises(LedgerUnavailable):
            lg.reserve(_order("o1"))
        with pytest.raises(LedgerUnavailable):
            lg.ping()
    token = TokenStore(admin.redis).create(Role.ORDER_ENTRY, "oe")
    app = create_app(
        {
            "REDIS_URL": acl_server.url(),
            "REDIS_USERNAME": "gateway",
            "REDIS_PASSWORD": "wrong-password",
            "REDIS_TIMEOUT_MS": 2000,
        }
    )
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    answer = client.post("/v1/orders", json=ORDER, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    assert answer.json["reason"] == "RISK_UNAVAILABLE"
    after = sorted(k for k in admin.redis.scan_iter() if k != b"ledger:tokens")
    assert after == [k for k in before if k != b"ledger:tokens"]


# -- TLS ---------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)  # fmt: skip


def _cert(d: Path, name: str, ca: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext + "\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
             cwd=d)  # fmt: skip


@dataclass
class _TlsServer:
    port: int
    dir: Path

    def settings(self, ca: str = "ca", client: bool = True) -> RedisSettings:
        d = self.dir
        return RedisSettings(
            tls_ca=str(d / f"{ca}.crt"),
            tls_cert=str(d / "client.crt") if client else None,
            tls_key=str(d / "client.key") if client else None,
        )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: Any) -> Iterator[_TlsServer]:
    """redis-server on a TLS port only, verifying client certificates of its own CA."""
    binary = BINARIES.get("redis") or BINARIES.get("valkey")
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make the test certificates")
    d = tmp_path_factory.mktemp("tls")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    _cert(d, "client", "ca", "extendedKeyUsage=clientAuth")
    port, log = free_port(), d / "server.log"
    args = [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    args += ["--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key")]
    args += ["--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "yes"]
    args += ["--save", "", "--dir", str(d), "--logfile", str(log), "--daemonize", "no"]
    server = _TlsServer(port, d)
    url = f"rediss://127.0.0.1:{port}/0"
    probe_client = connect(url, timeout_s=1, settings=server.settings())
    with open(d / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
    for _ in range(200):
        try:
            probe_client.ping()
            break
        except redis.RedisError:
            if proc.poll() is not None:
                err = (d / "stderr.txt").read_text() + (log.read_text() if log.exists() else "")
                said = [line for line in err.splitlines() if "tls" in line.lower()]
                if said:
                    pytest.skip(f"{binary} has no TLS support: {said[0].strip()[:200]}")
                pytest.fail(f"{binary} did not start with TLS: {err}")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"{binary} did not answer on its TLS port: {log.read_text()}")
    probe_client.close()
    yield server
    proc.terminate()
    proc.wait(timeout=10)


def test_tls_with_the_ca_and_a_client_certificate_trades(tls_server, monkeypatch):
    url = f"rediss://127.0.0.1:{tls_server.port}/0"
    lg = Ledger(connect(url, timeout_s=5, settings=tls_server.settings()), actor="tls")
    lg.redis.flushall()
    lg.load_policy(load_policy_file(EXAMPLE_POLICY), by="tls")
    assert lg.reserve(_order("t1")).accepted
    # The same from the environment, as the CLI and Ledger.from_url read it.
    s = tls_server.settings()
    monkeypatch.setenv("LEDGER_REDIS_TLS_CA", str(s.tls_ca))
    monkeypatch.setenv("LEDGER_REDIS_TLS_CERT", str(s.tls_cert))
    monkeypatch.setenv("LEDGER_REDIS_TLS_KEY", str(s.tls_key))
    assert Ledger.from_url(url, timeout_s=5).reserve(_order("t1")).replayed
    app = create_app({"REDIS_URL": url, "REDIS_TIMEOUT_MS": 5000})
    token = TokenStore(lg.redis).create(Role.ORDER_ENTRY, "oe-tls")
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    answer = client.post("/v1/orders", json=ORDER, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201 and answer.json["decision"] == "accepted"


def test_tls_fails_closed_on_a_certificate_it_cannot_verify(tls_server):
    port = tls_server.port
    for url, settings in (
        # The server's certificate does not chain to the CA given.
        (f"rediss://127.0.0.1:{port}/0", tls_server.settings(ca="other-ca")),
        # The server asks for a client certificate and gets none.
        (f"rediss://127.0.0.1:{port}/0", tls_server.settings(client=False)),
        # Plain text to a TLS port.
        (f"redis://127.0.0.1:{port}/0", RedisSettings()),
    ):
        lg = Ledger(connect(url, timeout_s=2, settings=settings))
        with pytest.raises(LedgerUnavailable):
            lg.reserve(_order("t2"))


def test_the_cli_logs_in_from_the_environment_and_only_admin_makes_tokens(acl_server, admin):
    from click.testing import CliRunner

    from ledger.cli import cli

    url = acl_server.url()

    def run(user: str, password: str, *args: str) -> Any:
        env = {"LEDGER_REDIS_USERNAME": user, "LEDGER_REDIS_PASSWORD": password}
        return CliRunner(env=env).invoke(cli, ["--redis-url", url, *args])

    assert run("admin", ADMIN_PW, "status").exit_code == 0
    made = run("admin", ADMIN_PW, "token", "create", "--role", "ops", "--name", "ops-1")
    assert made.exit_code == 0, made.output
    refused = run("gateway", GATEWAY_PW, "token", "create", "--role", "ops", "--name", "ops-2")
    assert refused.exit_code == 2 and "NoPermissionError" in refused.stderr
    wrong = run("admin", "wrong-password", "status")
    assert wrong.exit_code == 2 and "ledger unavailable" in wrong.stderr
    assert [p.name for p in TokenStore(admin.redis).list()] == ["ops-1"]


def test_the_gateway_user_may_do_what_durability_and_the_archive_ask(acl_server, admin):
    """With durability on, each call also PUBLISHes on ledger:durable and WAITs; with an
    archiver registered, each script reads XINFO GROUPS: the ACL must allow all three."""
    from ledger.audit import register

    register(admin.redis, admin.keys.audit("ACME"))
    url = acl_server.url("gateway", GATEWAY_PW)
    # No replica here: durable_replicas=0 still sends nothing; ask WAIT 0 explicitly.
    gw = Ledger.from_url(url, timeout_s=5, actor="gw")
    assert gw.reserve(_order("d1")).accepted
    assert gw.redis.publish("ledger:durable", "x") == 0
    assert gw.redis.execute_command("WAIT", 0, 10) == 0
    groups = gw.redis.xinfo_groups(admin.keys.audit("ACME"))
    assert [g["name"] for g in groups] == [b"archive"]
    assert groups[0]["lag"] >= 1
