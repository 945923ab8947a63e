"""ledger/store/tokens.py and the ``ledger token`` group (ledger/cli/token.py), on a real server."""

from __future__ import annotations

import hashlib
import json
import os

import click
import pytest
from click.testing import CliRunner

from ledger.cli.token import token as token_group
from ledger.errors import InvalidInput, LedgerUnavailable
from ledger.store.embedded import free_port
from ledger.store.tokens import DEV_SECRET, Principal, Role, TokenStore, hash_token


@pytest.fixture
def store(redis_client):
    return TokenStore(redis_client)


def _everything(redis_client) -> bytes:
    out = b""
    for key in redis_client.scan_iter():
        out += key + b"".join(k + v for k, v in redis_client.hgetall(key).items())
    return out


def test_create_then_lookup_and_only_the_hash_is_stored(store, redis_client):
    value = store.create("desk-head", "dh-1", ["EQ-CASH", "EQ-DERIV"])
    assert value.startswith("llt_") and len(value) > 40
    assert store.lookup(value) == Principal(
        "dh-1",
        Role.DESK_HEAD,
        frozenset({"EQ-CASH", "EQ-DERIV"}),
        store.lookup(value).created_at_ms,
    )
    stored = _everything(redis_client)
    assert value.encode() not in stored
    assert hash_token(value, os.environ["LEDGER_TOKEN_SECRET"]).encode() in stored


def test_unknown_and_malformed_tokens_are_none(store):
    store.create("ops", "ops-1")
    assert store.lookup("llt_nope") is None
    assert store.lookup("") is None
    assert store.lookup("x" * 1000) is None


def test_revoke_and_list(store):
    a = store.create("ops", "ops-1")
    store.create("order-entry", "oe-1")
    assert [p.name for p in store.list()] == ["oe-1", "ops-1"]
    assert store.revoke("ops-1") is True
    assert store.lookup(a) is None
    assert store.revoke("ops-1") is False
    assert [p.name for p in store.list()] == ["oe-1"]


@pytest.mark.parametrize(
    ("role", "name", "desks", "field"),
    [
        ("admin", "x", (), "role"),
        ("ops", "has space", (), "name"),
        ("ops", "", (), "name"),
        ("desk-head", "dh", (), "desk"),
        ("ops", "ops-x", ("EQ-CASH",), "desk"),
        ("desk-head", "dh", ("bad desk",), "desk"),
    ],
)
def test_bad_create_is_refused_and_stores_nothing(store, redis_client, role, name, desks, field):
    with pytest.raises(InvalidInput) as info:
        store.create(role, name, desks)
    assert info.value.field == field
    assert redis_client.exists(store.key) == 0


def test_a_name_is_taken_once(store, redis_client):
    first = store.create("ops", "ops-1")
    with pytest.raises(InvalidInput, match="exists"):
        store.create("risk-admin", "ops-1")
    assert store.lookup(first).role is Role.OPS
    assert len(store.list()) == 1
    assert redis_client.hlen(store.key) == 2


def test_a_closed_port_is_ledger_unavailable():
    import redis

    store = TokenStore(redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(LedgerUnavailable):
        store.lookup("llt_x")
    with pytest.raises(LedgerUnavailable):
        store.create("ops", "ops-1")


# -- the click group ---------------------------------------------------------------------


@pytest.fixture
def run(redis_url):
    def invoke(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(
            token_group, list(args), env={"LEDGER_REDIS_URL": redis_url, **(env or {})}
        )

    return invoke


def test_cli_create_prints_the_token_once_and_it_works(run, store):
    result = run(
        "create", "--role", "desk-head", "--name", "dh-1", "--desk", "EQ-CASH", "--desk", "EQ-DERIV"
    )
    assert result.exit_code == 0, result.output
    value = result.stdout.strip()
    assert "\n" not in value
    assert store.lookup(value).desks == {"EQ-CASH", "EQ-DERIV"}
    assert "cannot be shown again" in result.stderr


def test_cli_list_and_revoke(run, store):
    store.create("ops", "ops-1")
    store.create("desk-head", "dh-1", ["EQ-CASH"])
    listed = run("list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "DESKS", "FIRMS", "CREATED"]
    assert lines[1].split()[:4] == ["dh-1", "desk-head", "EQ-CASH", "-"]
    as_json = json.loads(run("list", "--json").stdout)
    assert [(t["name"], t["role"]) for t in as_json] == [("dh-1", "desk-head"), ("ops-1", "ops")]
    assert run("revoke", "ops-1").exit_code == 0
    assert [p.name for p in store.list()] == ["dh-1"]


def test_cli_errors_exit_1_for_bad_input_and_2_when_unavailable(run, store):
    missing = run("revoke", "nobody")
    assert missing.exit_code == 1 and "no token named" in missing.stderr
    bad = run("create", "--role", "ops", "--name", "x", "--desk", "EQ-CASH")
    assert bad.exit_code == 1 and "desk" in bad.stderr
    usage = run("create", "--role", "king", "--name", "x")
    assert usage.exit_code == 1
    down = run("list", env={"LEDGER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.exit_code == 2 and "ledger unavailable" in down.stderr
    assert store.list() == []


def test_cli_takes_url_and_prefix_from_the_parent_context(redis_url, redis_client):
    class Settings:
        def __init__(self) -> None:
            self.redis_url = redis_url
            self.prefix = "other"

    @click.group()
    @click.pass_context
    def parent(ctx: click.Context) -> None:
        ctx.obj = Settings()

    parent.add_command(token_group)
    result = CliRunner().invoke(
        parent,
        ["token", "create", "--role", "ops", "--name", "o"],
        env={"LEDGER_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.exit_code == 0, result.output
    assert TokenStore(redis_client, "other").lookup(result.stdout.strip()).name == "o"
    assert TokenStore(redis_client).list() == []


# -- integrity: a digest written straight into Redis is no token ----------------------


def _forge(redis_client, key: str, digest: str, name: str = "mallory") -> None:
    record = {"name": name, "role": "risk-admin", "desks": [], "created_at_ms": 0}
    redis_client.hset(key, mapping={f"t|{digest}": json.dumps(record), f"n|{name}": digest})


def test_a_token_hash_written_straight_into_redis_is_refused(store, redis_client):
    forged = "llt_" + "A" * 43
    # What the digest used to be (a plain sha256), and a keyed one under a guessed secret.
    _forge(redis_client, store.key, hashlib.sha256(forged.encode()).hexdigest())
    assert store.lookup(forged) is None
    _forge(redis_client, store.key, hash_token(forged, "guessed-secret-0000"), "eve")
    assert store.lookup(forged) is None
    # The same digest under the real secret is what a created token has.
    assert store.lookup(store.create("ops", "ops-1")).name == "ops-1"


def test_another_secret_honours_none_of_the_tokens(store, redis_client):
    value = store.create("ops", "ops-1")
    other = TokenStore(redis_client, secret="another-secret-of-32-characters!")
    assert other.lookup(value) is None
    assert TokenStore(redis_client).lookup(value).name == "ops-1"


def test_no_or_a_short_secret_is_refused_by_name(redis_client, monkeypatch):
    monkeypatch.delenv("LEDGER_TOKEN_SECRET")
    monkeypatch.delenv("LEDGER_INSECURE_DEV_TOKENS", raising=False)
    with pytest.raises(InvalidInput, match="LEDGER_TOKEN_SECRET: not set"):
        TokenStore(redis_client)
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        TokenStore(redis_client, secret="short")
    monkeypatch.setenv("LEDGER_INSECURE_DEV_TOKENS", "1")
    assert TokenStore(redis_client)._secret == DEV_SECRET
    assert redis_client.exists("ledger:tokens") == 0


def test_cli_without_the_secret_exits_1_naming_it(run, redis_client):
    result = run("create", "--role", "ops", "--name", "o", env={"LEDGER_TOKEN_SECRET": None})
    assert result.exit_code == 1
    assert "LEDGER_TOKEN_SECRET: not set" in result.stderr
    assert redis_client.exists("ledger:tokens") == 0


def test_cli_binds_a_token_to_firms_and_lists_them(run, store):
    made = run("create", "--role", "order-entry", "--name", "oms-f", "--firm", "F1", "--firm", "F2")
    assert made.exit_code == 0, made.output
    assert store.lookup(made.stdout.strip()).firms == {"F1", "F2"}
    assert run("list").stdout.splitlines()[1].split()[:4] == ["oms-f", "order-entry", "-", "F1,F2"]
    assert json.loads(run("list", "--json").stdout)[0]["firms"] == ["F1", "F2"]
    # A desk head's firm comes from its desks; a firm id is an id.
    head = run("create", "--role", "desk-head", "--name", "dh", "--desk", "D1", "--firm", "F1")
    assert head.exit_code == 1 and "firm" in head.stderr
    bad = run("create", "--role", "order-entry", "--name", "x", "--firm", "{F1}")
    assert bad.exit_code == 1 and "firm" in bad.stderr
    assert [p.name for p in store.list()] == ["oms-f"]
