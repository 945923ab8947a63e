"""The one-table rule: reason codes live in ledger.reasons and nowhere else.

Lua names a code only as ``R.NAME``, which the loader resolves from
:class:`ledger.reasons.Reason` (an unknown name stops the load). These tests
read every script, its header and its includes, and run the resolved codes
on the real server.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import redis

import ledger.store.scripts as scripts
from ledger.reasons import REJECT_REASONS, Reason
from ledger.store.scripts import SCRIPT_NAMES, ScriptSet, lua_dir, source

LUA = lua_dir()
SCRIPTS = sorted(LUA.glob("*.lua"))
INCLUDES = sorted((LUA / "includes").glob("*.lua"))
ALL_LUA = SCRIPTS + INCLUDES

_HEADER = re.compile(r"\A--\[\[\n(.*?)\n\]\]\n", re.DOTALL)
_R_NAME = re.compile(r"\bR\.([A-Za-z_][A-Za-z0-9_]*)")
_CODE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b")
_INCLUDE = re.compile(r'^--- @include "([a-z_]+)"$', re.MULTILINE)
#: ``verbNoun-<numKeys>.lua``: lower camelCase, a verb first.
_FILE_NAME = re.compile(r"^([a-z]+(?:[A-Z][a-z]*)*)-(\d+|n)\.lua$")

#: The codes the ledger's specification names, spelled exactly.
REQUIRED = [
    "KILL_SWITCH",
    "NOT_ENTITLED",
    "UNKNOWN_NODE",
    "INVALID_ORDER",
    "DUPLICATE_ORDER_ID",
    "MAX_ORDER_QTY",
    "MAX_ORDER_NOTIONAL",
    "GROSS_LIMIT",
    "NET_LIMIT",
    "OPEN_ORDERS_LIMIT",
    "MESSAGE_RATE",
    "RISK_UNAVAILABLE",
]


def header(path: Path) -> str:
    match = _HEADER.match(path.read_text(encoding="utf-8"))
    assert match, f"{path.name}: no --[[ ... ]] header at the top"
    return match.group(1)


def body(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    match = _HEADER.match(text)
    return text[match.end() :] if match else text


def section(text: str, title: str) -> str:
    """The header text from ``title`` to its end."""
    assert title in text, f"header has no {title!r}"
    return text[text.index(title) + len(title) :]


def header_codes(path: Path) -> list[str]:
    return _CODE.findall(section(header(path), "Codes:"))


def includes_of(path: Path) -> list[Path]:
    return [LUA / "includes" / f"{name}.lua" for name in _INCLUDE.findall(path.read_text())]


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_lua_tree_is_what_the_loader_ships(redis_client: redis.Redis) -> None:
    snake = [
        re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), p.name.rsplit("-", 1)[0])
        for p in SCRIPTS
    ]
    assert sorted(snake) == sorted(SCRIPT_NAMES)
    assert sorted(b.name for b in ScriptSet(redis_client).all()) == sorted(SCRIPT_NAMES)
    assert INCLUDES, "lua/includes is empty"


# -- the table itself ---------------------------------------------------------------


@pytest.mark.parametrize("name", REQUIRED)
def test_required_code_exists_with_its_exact_name(name: str) -> None:
    assert Reason[name].value == name
    assert Reason(name).name == name
    assert Reason[name] in REJECT_REASONS


def test_every_code_is_its_own_name() -> None:
    # Lua returns the value, Python looks it up by value, people read the name:
    # all three must be one string.
    assert all(r.value == r.name for r in Reason)
    assert Reason.OK not in REJECT_REASONS
    assert frozenset(Reason) - {Reason.OK} == REJECT_REASONS


# -- Lua against the table ----------------------------------------------------------


@pytest.mark.parametrize("path", ALL_LUA, ids=ids(ALL_LUA))
def test_every_r_name_in_lua_is_a_reason(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    names = set(_R_NAME.findall(text))
    assert names - set(Reason.__members__) == set()
    # Codes are only ever named: never R[...], never a table of Lua's own.
    assert not re.search(r"\bR\s*\[", text)
    assert not re.search(r"\bR\s*=", text)
    # And never spelled as a bare string where R.NAME belongs.
    quoted = set(re.findall(r"""['"]([A-Z][A-Z_]+)['"]""", text))
    assert quoted & set(Reason.__members__) == set()


@pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
def test_every_code_in_a_header_is_a_reason(path: Path) -> None:
    codes = header_codes(path)
    assert codes, f"{path.name}: no codes listed"
    assert set(codes) - set(Reason.__members__) == set()
    assert len(codes) == len(set(codes))
    # Everything in Output:, quoted examples aside, is a code too.
    output = re.sub(r'"[^"]*"', "", section(header(path), "Output:"))
    assert set(_CODE.findall(output)) - set(Reason.__members__) == set()


@pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
def test_header_codes_match_what_the_script_can_return(path: Path) -> None:
    listed = set(header_codes(path))
    own = set(_R_NAME.findall(body(path)))
    reachable = own.union(*(set(_R_NAME.findall(p.read_text())) for p in includes_of(path)))
    # Every code the script itself names is listed; every listed one exists in
    # the script or an include it pulls in.
    assert own <= listed
    assert listed <= reachable
    assert "OK" in listed


@pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
def test_every_include_exists_and_every_code_is_resolved(path: Path) -> None:
    for include in includes_of(path):
        assert include.is_file()
    text = source(path.name)
    assert not _R_NAME.search(text), "an R.NAME was left for the server"
    assert "@include" not in text


# -- the guard: an unknown name can never reach a decision ------------------------


@pytest.fixture
def lua_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of lua/ that ``ledger.store.scripts.source`` reads instead of the real one."""
    shutil.copytree(LUA, tmp_path / "lua")
    monkeypatch.setattr(scripts, "lua_dir", lambda: tmp_path / "lua")
    return tmp_path / "lua"


def test_every_name_resolves_to_its_code_on_the_server(
    redis_client: redis.Redis, lua_tree: Path
) -> None:
    names = [r.name for r in Reason]
    (lua_tree / "probe-0.lua").write_text("return {" + ", ".join(f"R.{n}" for n in names) + "}\n")
    assert [v.decode() for v in redis_client.eval(source("probe-0.lua"), 0)] == names


def test_unknown_name_stops_the_load(lua_tree: Path) -> None:
    (lua_tree / "probe-0.lua").write_text("return R.NO_SUCH_CODE\n")
    with pytest.raises(RuntimeError, match=r"unknown reason code R\.NO_SUCH_CODE"):
        source("probe-0.lua")
    # In an include as much as in a script.
    (lua_tree / "includes" / "probe.lua").write_text("local function f() return R.NOPE end\n")
    (lua_tree / "probe-0.lua").write_text('--- @include "probe"\nreturn f()\n')
    with pytest.raises(RuntimeError, match=r"unknown reason code R\.NOPE"):
        source("probe-0.lua")


def test_misspelt_code_in_a_real_script_stops_its_load(
    redis_client: redis.Redis, lua_tree: Path
) -> None:
    keys = ["t:{F}:order:o1", "t:{F}:agg", "t:{F}:open", "t:{F}:audit", "t:{F}:pos"]
    keys += ["t:{F}:policy", "t:{F}:expiry"]
    args = ["o1", "why", "test", 100]
    # As shipped, release-7.lua answers UNKNOWN_ORDER for an order that does not exist...
    assert redis_client.eval(source("release-7.lua"), 7, *keys, *args)[0] == b"UNKNOWN_ORDER"
    # ...and with the code misspelt it is never sent at all.
    script = lua_tree / "release-7.lua"
    script.write_text(script.read_text().replace("R.UNKNOWN_ORDER", "R.UNKNOWN_ORDR"))
    with pytest.raises(RuntimeError, match=r"release-7.lua: unknown reason code R\.UNKNOWN_ORDR"):
        source("release-7.lua")


@pytest.mark.parametrize("lua", ["return R.NO_SUCH_CODE", "return R.OK"])
def test_server_refuses_an_unresolved_name(redis_client: redis.Redis, lua: str) -> None:
    # Text that skipped the loader cannot return nil as a code: R does not
    # exist on the server, and reading an unknown global is an error there.
    with pytest.raises(redis.ResponseError, match="nonexistent global variable 'R'"):
        redis_client.eval(lua, 0)


def test_registered_scripts_carry_only_known_codes(redis_client: redis.Redis) -> None:
    for bound in ScriptSet(redis_client).all():
        text = bound.script.script
        assert not _R_NAME.search(text)
        listed = set(header_codes(LUA / bound.filename))
        # Every code its header lists is in the text Redis runs, as a literal.
        assert listed <= set(re.findall(r"'([A-Z][A-Z_]+)'", text))


# -- file names and key counts ------------------------------------------------------------


@pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
def test_script_is_named_verb_noun_numkeys(path: Path) -> None:
    assert _FILE_NAME.match(path.name)


@pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
def test_header_lists_exactly_numkeys_keys(path: Path) -> None:
    match = re.match(r"^[a-z_A-Z]+-(\d+|n)\.lua$", path.name)
    assert match
    text = header(path)
    listed = {int(i) for i in re.findall(r"KEYS\[(\d+)\]", text)}
    if match.group(1) == "n":
        # Fixed keys first, then keys per input item, reached by index arithmetic only.
        expected = set(range(1, max(listed) + 1))
        assert "per leg" in text
        assert re.search(r"\bKEYS\[\d+ \+ \d+ \* \w+\]", body(path))
    else:
        expected = set(range(1, int(match.group(1)) + 1))
        assert not re.search(r"\bKEYS\s*\[\s*[^\d\s]", body(path))
    assert listed == expected
    assert "Input:" in text
    # The body uses exactly those keys, and builds no key names of its own.
    assert {int(i) for i in re.findall(r"KEYS\[(\d+)\]", body(path))} == expected
    assert "'KEYS'" not in path.read_text() and "'SCAN'" not in path.read_text()


@pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
def test_header_lists_every_argv_the_body_reads(path: Path) -> None:
    listed: set[int] = set()
    for first, last in re.findall(r"ARGV\[(\d+)(?:\.\.(\d+))?\]", header(path)):
        listed.update(range(int(first), int(last or first) + 1))
    used = {int(i) for i in re.findall(r"ARGV\[(\d+)\]", body(path))}
    assert used <= listed
    assert listed == set(range(1, max(listed) + 1))


def test_loader_checks_the_key_count(redis_client: redis.Redis) -> None:
    bound = ScriptSet(redis_client).release
    assert bound.numkeys == 7
    with pytest.raises(AssertionError, match="release takes 7 keys, got 3"):
        bound(["a", "b", "c"], [])
    # reserve takes its fixed keys and two per order: the script checks its input.
    assert ScriptSet(redis_client).reserve.numkeys is None
