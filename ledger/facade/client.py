"""The facade order gateways and the CLI use: one script call per decision.

Routing (account -> firm, desk) comes from the routes hash each policy load
writes, read per account on first use and cached in the process. The scripts
verify every route against the firm's live policy and answer
``ROUTING_STALE`` (or ``UNKNOWN_NODE``) when a load moved or removed it; the
facade then reads the route again and asks once more. Once an account is
routed, a decision is exactly one round trip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgpack
import redis

import ledger.facade.views as views
import ledger.store.audit_streams as archive
import ledger.store.policy_store as policy_store
from ledger._types import RedisClient
from ledger.errors import InvalidInput, LedgerUnavailable, ReenableRefused, UnknownScope
from ledger.facade.core import Firms, Unlocated
from ledger.facade.inputs import text
from ledger.facade.order import Order, ValidOrder
from ledger.facade.overrides import Overrides
from ledger.facade.prices import Prices
from ledger.facade.reconcile import ReconcileReport, reconcile
from ledger.facade.results import (
    ARCHIVE_BEHIND,
    BasketDecision,
    Decision,
    FillResult,
    Kill,
    KillResult,
    ReleaseResult,
    UtilizationRow,
)
from ledger.facade.states import SYSTEM_PREFIX, States, audit_refused, check_reenabler
from ledger.facade.stress import Stress
from ledger.policy.lifecycle import check_tif, expire_ms
from ledger.policy.model import KINDS, Policy, load_policy_file
from ledger.policy.money import notional_minor, parse_price, parse_qty, parse_signed_money
from ledger.reasons import Reason
from ledger.store.connect import bounded_retry, connect
from ledger.store.durable import DEFAULT_TIMEOUT_MS, Durability, DurableWrites
from ledger.store.keys import Keys, check_id
from ledger.store.scripts import ScriptSet

__all__ = ["Ledger"]

T = TypeVar("T")


def _stale_route(decision: Decision, order: Order) -> bool:
    """A reject that a stale cached route can cause, and a fresh one may cure.

    An unknown trader or strategy is decided by the policy alone: asking again
    would only record the same reject twice.
    """
    if decision.reason in (Reason.ROUTING_STALE, Reason.NO_POLICY):
        return True
    return decision.reason is Reason.UNKNOWN_NODE and decision.scope == f"account:{order.account}"


def _leg_args(valid: ValidOrder, firm: str, desk: str) -> list[Any]:
    o = valid.order
    return [
        o.order_id,
        firm,
        desk,
        o.account,
        o.strategy,
        o.trader,
        o.symbol,
        o.side,
        valid.qty,
        valid.price.numerator,
        valid.price.scale,
        valid.fingerprint,
        o.venue or "",
        valid.time_in_force,
        "" if valid.expire_ms is None else valid.expire_ms,
        "1" if o.reduce_only else "",
    ]


#: Legs of one basket: every leg is decided inside one script call.
MAX_BASKET_LEGS = 500
#: Arguments of a reserve before the first leg's: actor, audit length, reject TTL, basket id.
_COMMON_ARGS = 4


def _fresh_state(decision: Decision) -> Decision:
    """A reserve decided now (not replayed) says what the order is: open or rejected.

    DUPLICATE_ORDER_ID speaks of another order under that id: no state.
    """
    if decision.replayed or decision.reason is Reason.DUPLICATE_ORDER_ID:
        return decision
    # Set in place: the decision was made here and nobody else holds it yet
    # (dataclasses.replace would copy every field of a frozen instance).
    object.__setattr__(decision, "state", "open" if decision.accepted else "rejected")
    return decision


def _basket_result(basket_id: str, orders: list[Order], raw: list[Any]) -> BasketDecision:
    code, leg = Reason(_s(raw[0])), int(raw[1])
    decided = raw[2:]
    tail: list[Any] | None = None
    # A basket total (BASKET_LIMIT, or INVALID_ORDER when it would lose exactness) comes last.
    if code is Reason.BASKET_LIMIT or (code is Reason.INVALID_ORDER and leg == 0):
        decided, tail = decided[:-1], decided[-1]
    # The decided legs end with the failing one; a leg refused before any
    # other was decided comes alone.
    first = leg - len(decided) if leg > 0 else 0
    legs = tuple(
        Decision.from_script(o.order_id, d) for o, d in zip(orders[first:], decided, strict=False)
    )
    if tail is not None:
        message = _s(tail[8]) if len(tail) > 8 else ""
        return BasketDecision(
            basket_id, False, code, 0, legs, _s(tail[1]), tail[2], tail[3], tail[4], message
        )
    if code is Reason.OK and legs and all(d.replayed for d in legs):
        # A replay: the basket is live only while every leg is still open.
        for i, d in enumerate(legs, start=1):
            if d.reason is Reason.ORDER_CLOSED:
                message = (
                    f"basket {basket_id} was reserved by an earlier identical call; "
                    f"leg {i} ({d.order_id}) is {d.state} now"
                )
                return BasketDecision(
                    basket_id, False, Reason.ORDER_CLOSED, i, legs[:i], message=message
                )
    elif code is Reason.OK:
        # Reserved now: every leg is open (a rejected basket leaves nothing behind).
        legs = tuple(dataclasses.replace(d, state="open") for d in legs)
    message = ARCHIVE_BEHIND if code is Reason.RISK_UNAVAILABLE else ""
    return BasketDecision(basket_id, code is Reason.OK, code, leg, legs, message=message)


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class Ledger:
    """A connection to the ledger. Safe to share between threads; create one per process.

    Args:
        client: a redis-py client (``decode_responses`` must be off). A
            ``redis.Redis`` that would retry more (redis-py's default backs
            off for seconds) is given the ledger's retry policy
            (:data:`ledger.store.connect.RETRY`: one immediate retry on a broken
            connection, none on a timeout).
        prefix: key prefix, ``ledger`` by default.
        cluster: key layout for Redis Cluster (global kill mirrored per firm).
        actor: who this process acts as, recorded with every decision.
        audit_maxlen: approximate length each audit stream is trimmed to.
        reject_ttl_ms: how long a rejected order id is remembered for idempotency.
        durable_replicas: replicas that must hold each change before it is
            acknowledged (ledger/store/durable.py); 0, the default, does not wait.
        durable_timeout_ms: how long to wait for them before failing closed.
        durable_fsync: the replicas must have fsynced it too (WAITAOF).
        functions: run the scripts as the function library (FCALL) where the
            server holds it or this client may load it (ledger/store/library.py);
            False: always EVALSHA.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "ledger",
        cluster: bool = False,
        actor: str = "library",
        audit_maxlen: int = 1_000_000,
        reject_ttl_ms: int = 86_400_000,
        durable_replicas: int = 0,
        durable_timeout_ms: int = DEFAULT_TIMEOUT_MS,
        durable_fsync: bool = False,
        functions: bool = True,
    ) -> None:
        # A caller's client keeps redis-py's default retries (seconds of backoff
        # on a refused connection) unless bounded: fail closed within the timeout.
        bounded_retry(client)
        self.redis = client
        self.keys = Keys(prefix, cluster)
        self.actor = actor
        self.audit_maxlen = audit_maxlen
        self.reject_ttl_ms = reject_ttl_ms
        durability = Durability(durable_replicas, durable_timeout_ms, durable_fsync)
        self.durable = DurableWrites(client, durability, prefix, cluster)
        self.scripts = ScriptSet(client, self.durable, functions=functions)
        self._policy: tuple[int, Policy] | None = None
        self._firms: list[str] = []
        #: scope -> route value from P:{routes} ("F|D" for accounts, "F" otherwise)
        self._routes: dict[str, str] = {}
        self._minor_units: int | None = None
        self.states = States(self)
        self.prices = Prices(self)
        self.overrides = Overrides(self)
        self.stress = Stress(self)

    @classmethod
    def from_url(
        cls, url: str, *, timeout_s: float = 1.0, cluster: bool = False, **kwargs: Any
    ) -> Ledger:
        """Connect to ``redis[s]://[user:password@]host:port/db`` or a Sentinel URL
        (``redis+sentinel://``, see :mod:`ledger.store.sentinel`); ``timeout_s`` bounds every
        call, and with ``durable_replicas`` a call may wait ``durable_timeout_ms`` more.

        Credentials and TLS files may also come from ``LEDGER_REDIS_*`` (see
        :mod:`ledger.store.connect`).
        """
        if kwargs.get("durable_replicas"):
            timeout_s += kwargs.get("durable_timeout_ms", DEFAULT_TIMEOUT_MS) / 1000
        client = connect(url, timeout_s=timeout_s, cluster=cluster)
        return cls(client, cluster=cluster, **kwargs)

    # -- plumbing ---------------------------------------------------------------

    @contextmanager
    def _redis_errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with every Redis failure raised as LedgerUnavailable."""
        with self._redis_errors():
            return fn(*args, **kwargs)

    def policy(self, refresh: bool = False) -> Policy | None:
        """The cached policy (fetched on first use or when ``refresh``)."""
        if self._policy is None or refresh:
            current = self._call(policy_store.revision, self.redis, self.keys)
            if current is None:
                self._policy = None
            elif self._policy is None or self._policy[0] != current:
                self._policy = self._call(policy_store.fetch, self.redis, self.keys)
        return self._policy[1] if self._policy else None

    def _route(self, scope: str, refresh: bool = False) -> str | None:
        """The firm (``F``, or ``F|D`` for an account) of a scope; None if it has no route.

        Cached per process; the scripts verify every route they are given, and a
        stale one is refreshed on the reject it causes.
        """
        if not refresh and scope in self._routes:
            return self._routes[scope]
        raw = self._call(self.redis.hmget, self.keys.routes(), scope, "meta|mu")
        self._minor_units = int(raw[1]) if raw[1] is not None else None
        if raw[0] is None:
            self._routes.pop(scope, None)
            return None
        route: str = _s(raw[0])
        self._routes[scope] = route
        return route

    def prefetch_routes(self) -> int:
        """Read every route at once (e.g. at start-up), so that no first order of an
        account pays a route read; returns how many were read."""
        raw = self._call(self.redis.hgetall, self.keys.routes())
        table = {_s(k): _s(v) for k, v in raw.items()}
        mu = table.get("meta|mu")
        self._minor_units = int(mu) if mu is not None else None
        self._routes = {k: v for k, v in table.items() if not k.startswith("meta|")}
        return len(self._routes)

    def _units(self) -> int | None:
        """Minor units of the live policy, for the exactness bound of inputs."""
        if self._minor_units is None:
            self._route("meta|rev")
        return self._minor_units

    def firm_of(self, scope: str) -> str | None:
        """The firm of a node (``desk:ID``, ``account:ID``, ...); None if not in the policy."""
        route = self._route(scope)
        return route.partition("|")[0] if route is not None else None

    def _firm_of_scope(self, scope: str) -> str:
        route = self._route(scope, refresh=True)
        if route is None:
            raise UnknownScope(f"{scope}: no such node in the loaded policy")
        return route.partition("|")[0]

    def _caller_firms(self, firm: Firms, account: str | None) -> list[str] | None:
        """The firms the caller allows an order to be in; None when it named neither.

        ``account`` resolves to its firm through the routes (cached: the caller
        named it, so a cached route cannot pick another firm's order by itself).
        """
        allowed: set[str] | None = None
        if firm is not None:
            names = [firm] if isinstance(firm, str) else list(firm)
            allowed = {check_id(f, "firm") for f in names}
        if account is not None:
            route = self._route(f"account:{check_id(account, 'account')}")
            account_firm = route.partition("|")[0] if route is not None else None
            # A firm the caller may not see answers as an unknown order: nothing
            # may tell that the id exists elsewhere.
            if account_firm is None or (allowed is not None and account_firm not in allowed):
                raise Unlocated(Reason.UNKNOWN_ORDER, "no such order")
            allowed = {account_firm}
        return sorted(allowed) if allowed is not None else None

    def _locate(self, order_id: str, firm: Firms, account: str | None) -> str:
        """The one firm whose order ``order_id`` the call is about.

        Order ids are unique per firm. A caller that names one firm (or an
        account) is answered in that firm, in the script's one round trip.
        Otherwise the id is looked up afresh, on every call, in each firm the
        caller allows (every firm when it named none): no process cache ever
        decides which firm's order is touched. Found in none: UNKNOWN_ORDER;
        in several: refused (INVALID_ORDER), naming them, until the caller
        says which.
        """
        try:
            allowed = self._caller_firms(firm, account)
        except InvalidInput as exc:
            raise Unlocated(Reason.INVALID_ORDER, str(exc)) from exc
        if allowed is not None and len(allowed) == 1:
            return allowed[0]
        firms = allowed if allowed is not None else self._firms
        count, states = self._order_states(order_id, firms)
        if allowed is None and count != len(firms):
            # Every firm that ever had a policy (orders outlive their firm's
            # removal); firms are only ever added, so another count means new ones.
            self._firms = firms = self._known_firms()
            count, states = self._order_states(order_id, firms)
        # A rejected id is remembered for idempotency only: it is no order.
        found = [f for f, st in zip(firms, states, strict=True) if st not in (None, "rejected")]
        if not found:
            raise Unlocated(Reason.UNKNOWN_ORDER, "no such order")
        if len(found) > 1:
            raise Unlocated(
                Reason.INVALID_ORDER,
                f"order_id: {order_id} is an order of firms {', '.join(found)}; order ids are "
                "unique per firm: name the firm (firm=) or the account (account=)",
            )
        return found[0]

    def _order_states(self, order_id: str, firms: list[str]) -> tuple[int, list[str | None]]:
        """How many firms there are, and the order's state in each of ``firms``: one round trip."""
        with self._redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.scard(self.keys.firms())
            for f in firms:
                pipe.hget(self.keys.order(f, order_id), "st")
            count, *states = pipe.execute()
        return int(count), [_s(st) for st in states]

    def _on_order(
        self,
        order_id: str,
        firm: Firms,
        account: str | None,
        run: Callable[[str], list[Any]],
    ) -> list[Any] | Unlocated:
        """``run(firm)`` in the firm that holds the order (see :meth:`_locate`), or
        why no single firm does. ``run`` is named by its firm argument."""
        try:
            raw = run(self._locate(order_id, firm, account))
            if account is not None and _s(raw[0]) == Reason.UNKNOWN_ORDER.value:
                # The account's cached route may be stale (a load moved it): read it afresh.
                before = self._routes.get(f"account:{account}")
                if self._route(f"account:{account}", refresh=True) != before:
                    raw = run(self._locate(order_id, firm, account))
        except Unlocated as exc:
            return exc
        return raw

    def _known_firms(self) -> list[str]:
        return sorted(_s(m) for m in self._call(self.redis.smembers, self.keys.firms()))

    # -- policy -----------------------------------------------------------------

    def load_policy(self, policy: Policy | str, *, by: str, source: str = "") -> int:
        """Swap in a policy (a :class:`Policy` or a YAML path); returns its revision."""
        if not isinstance(policy, Policy):
            source = source or str(policy)
            policy = load_policy_file(policy)
        # Many writes per firm: one durability wait after the last covers them all.
        with self._redis_errors(), self.durable.deferred():
            rev = policy_store.load(
                self.redis,
                self.keys,
                self.scripts,
                policy,
                by=by,
                source=source,
                audit_maxlen=self.audit_maxlen,
            )
        self._policy = (rev, policy)
        self._firms = self._known_firms()
        self._routes.clear()
        self._minor_units = policy.minor_units
        return rev

    def policy_info(self) -> dict[str, Any] | None:
        """Revision, sha256, who loaded the live policy, when (ms) and from what source."""
        raw = self._call(
            self.redis.hmget, self.keys.policy_doc(), "rev", "sha", "by", "at_ms", "source"
        )
        if raw[0] is None:
            return None
        rev, sha, by, at_ms, source = (_s(v) for v in raw)
        return {"rev": int(rev), "sha256": sha, "by": by, "at_ms": int(at_ms), "source": source}

    # -- order decisions --------------------------------------------------------

    def _actor(self, actor: str | None) -> str:
        if actor is None:
            return self.actor
        return text("actor", actor, 200)

    def reserve_call(
        self,
        order: Order,
        *,
        actor: str | None = None,
        refresh: bool = False,
        firm: Firms = None,
    ) -> Decision | tuple[str, list[str], list[Any]]:
        """What :meth:`reserve` sends for ``order``: ``(firm, keys, args)`` of the one
        script call, or the Decision when the order is refused before reaching Redis.

        ``firm`` (one id or several) limits the accounts the caller may use: an
        account of another firm is answered as one not in the policy.
        """
        who = self._actor(actor)
        o = order
        try:
            valid = order.validate()
        except InvalidInput as exc:
            return Decision.reject(str(order.order_id), Reason.INVALID_ORDER, str(exc))
        route = self._route(f"account:{o.account}", refresh=refresh)
        if self._minor_units is None:
            return Decision.reject(o.order_id, Reason.NO_POLICY, "no policy is loaded")
        allowed = None
        if firm is not None:
            try:
                allowed = self._caller_firms(firm, None)
            except InvalidInput as exc:
                return Decision.reject(o.order_id, Reason.INVALID_ORDER, str(exc))
        if route is None or (allowed is not None and route.partition("|")[0] not in allowed):
            return Decision.reject(
                o.order_id, Reason.UNKNOWN_NODE, "account not in policy", f"account:{o.account}"
            )
        firm, _, desk = route.partition("|")
        try:
            notional_minor(valid.qty, valid.price, self._minor_units)
        except InvalidInput as exc:
            return Decision.reject(o.order_id, Reason.INVALID_ORDER, str(exc))
        keys = [*self._firm_keys(firm), *self._leg_keys(firm, valid)]
        # _COMMON_ARGS fields, then the leg's (lua/reserve-n.lua).
        args = [who, self.audit_maxlen, self.reject_ttl_ms, "", *_leg_args(valid, firm, desk)]
        return firm, keys, args

    def _firm_keys(self, firm: str) -> list[str]:
        """The firm's keys of a reserve, in lua/reserve-n.lua's order."""
        k = self.keys
        return [
            k.policy(firm),
            k.kills(firm),
            k.global_kill(firm),
            k.agg(firm),
            k.open_index(firm),
            k.audit(firm),
            k.controls(firm),
            k.prices(firm),
            k.positions(firm),
            k.expiry(firm),
        ]

    def _leg_keys(self, firm: str, valid: ValidOrder) -> list[str]:
        k = self.keys
        return [k.order(firm, valid.order.order_id), k.duplicate(firm, valid.duplicate_key)]

    def _decided(self, order_id: str, raw: list[Any]) -> Decision:
        return _fresh_state(Decision.from_script(order_id, raw))

    def reserve(self, order: Order, *, actor: str | None = None, firm: Firms = None) -> Decision:
        """Check and reserve a new order, all-or-nothing. Raises :class:`LedgerUnavailable`.

        ``firm`` (one id or several): the firms the caller acts for; an account
        of any other firm is refused as one not in the policy.
        """
        for attempt in range(2):
            call = self.reserve_call(order, actor=actor, refresh=attempt > 0, firm=firm)
            if isinstance(call, Decision):
                # A missing route was just read fresh: nothing to retry.
                return call
            _, keys, args = call
            decision = self._decided(order.order_id, self._call(self.scripts.reserve, keys, args))
            if attempt > 0 or not _stale_route(decision, order):
                return decision
        return decision

    def reserve_many(
        self, orders: list[Order], *, actor: str | None = None, firm: Firms = None
    ) -> list[Decision]:
        """Reserve a batch in one round trip: each order is still its own atomic
        script call, decided in the order given. Orders whose routing turns out
        stale are decided again one by one."""
        if self.keys.cluster and self.durable.on:
            # A cluster pipeline spans shards; each call waits on its own shard instead.
            return [self.reserve(o, actor=actor, firm=firm) for o in orders]
        calls = [self.reserve_call(o, actor=actor, firm=firm) for o in orders]
        with self._redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for call in calls:
                if not isinstance(call, Decision):
                    self.scripts.reserve(call[1], call[2], client=pipe)
            waits = self.durable.append(pipe)
            raws = iter(self.durable.strip(pipe.execute(), waits))
        out = []
        for order, call in zip(orders, calls, strict=True):
            if isinstance(call, Decision):
                decision = call
            else:
                decision = self._decided(order.order_id, next(raws))
                if _stale_route(decision, order):
                    decision = self.reserve(order, actor=actor, firm=firm)
            out.append(decision)
        return out

    def reserve_basket(
        self,
        orders: list[Order],
        *,
        basket_id: str,
        actor: str | None = None,
        firm: Firms = None,
    ) -> BasketDecision:
        """Reserve every order of a basket or none, in one script call.

        All legs must belong to one firm. One failing leg rejects the whole
        basket and is named (``leg``, ``failing_order``) with its reason; the
        basket's total through each node is held to ``max_basket_notional``.
        A rejected basket leaves nothing behind, so it can be retried as is.
        """
        who = self._actor(actor)
        try:
            check_id(basket_id, "basket_id")
            if not 1 <= len(orders) <= MAX_BASKET_LEGS:
                raise InvalidInput("orders", f"a basket has 1 to {MAX_BASKET_LEGS} orders")
            if len({o.order_id for o in orders}) != len(orders):
                raise InvalidInput("orders", "order ids must be distinct within a basket")
        except InvalidInput as exc:
            return BasketDecision(str(basket_id), False, Reason.INVALID_ORDER, message=str(exc))
        for attempt in range(2):
            call = self._basket_call(orders, basket_id, who, attempt > 0, firm)
            if isinstance(call, BasketDecision):
                return call
            _, keys, args = call
            raw = self._call(self.scripts.reserve, keys, args)
            result = _basket_result(basket_id, orders, raw)
            stale = result.leg > 0 and _stale_route(result.legs[-1], orders[result.leg - 1])
            if attempt > 0 or not stale:
                break
        return result

    def _basket_call(
        self, orders: list[Order], basket_id: str, who: str, refresh: bool, allowed: Firms
    ) -> BasketDecision | tuple[str, list[str], list[Any]]:
        firm_of_basket, keys, legs = None, list[str](), list[Any]()
        for i, order in enumerate(orders, start=1):
            call = self.reserve_call(order, actor=who, refresh=refresh, firm=allowed)
            if isinstance(call, Decision):
                return BasketDecision(
                    basket_id, False, call.reason, i, (call,), message=call.message
                )
            firm, leg_keys, args = call
            if firm_of_basket not in (None, firm):
                message = f"orders: leg {i} is in firm {firm}, the basket in {firm_of_basket}"
                return BasketDecision(basket_id, False, Reason.INVALID_ORDER, i, message=message)
            firm_of_basket = firm
            keys.extend(leg_keys[len(self._firm_keys(firm)) :])
            legs.extend(args[_COMMON_ARGS:])
        assert firm_of_basket is not None
        keys = [*self._firm_keys(firm_of_basket), *keys]
        args = [who, self.audit_maxlen, self.reject_ttl_ms, basket_id, *legs]
        return firm_of_basket, keys, args

    def replace(
        self,
        order_id: str,
        qty: str | int | Decimal,
        price: str | int | Decimal,
        *,
        actor: str | None = None,
        firm: Firms = None,
        account: str | None = None,
        time_in_force: str | None = None,
        expire_time: datetime | str | None = None,
        reduce_only: bool = False,
    ) -> Decision:
        """Modify an open order to a new total qty and price; re-checked, all-or-nothing.

        ``firm`` / ``account`` say whose order ``order_id`` is (ids are unique per
        firm); with neither, an id held by several firms is refused (INVALID_ORDER).
        ``time_in_force`` None keeps the order's time in force and due time; DAY,
        GTC or GTD (with ``expire_time``) sets a new one, as a FIX replace does.
        ``reduce_only=True`` flags the order reduce-only from now on (a flag once set
        stays); a flagged order as replaced must shrink the position at every node.
        """
        who = self._actor(actor)
        try:
            check_id(order_id, "order_id")
            if not isinstance(reduce_only, bool):
                raise InvalidInput("reduce_only", "must be true or false")
            tif_args: list[Any] = ["", ""]
            if time_in_force is not None or expire_time is not None:
                tif = check_tif(time_in_force, expire_time, replace=True)
                tif_args = [tif, expire_ms(expire_time) if tif == "GTD" else ""]
            new_qty, new_price = parse_qty(qty), parse_price(price)
            units = self._units()
            if units is not None:
                notional_minor(new_qty, new_price, units)
        except InvalidInput as exc:
            return Decision.reject(str(order_id), Reason.INVALID_ORDER, str(exc))
        k = self.keys
        raw = self._on_order(
            order_id,
            firm,
            account,
            lambda firm: self._call(
                self.scripts.replace,
                [
                    k.policy(firm),
                    k.kills(firm),
                    k.global_kill(firm),
                    k.order(firm, order_id),
                    k.agg(firm),
                    k.audit(firm),
                    k.controls(firm),
                    k.prices(firm),
                    k.positions(firm),
                    k.open_index(firm),
                    k.expiry(firm),
                ],
                [
                    order_id,
                    new_qty,
                    new_price.numerator,
                    new_price.scale,
                    who,
                    self.audit_maxlen,
                    *tif_args,
                    "1" if reduce_only else "",
                ],
            ),
        )
        if isinstance(raw, Unlocated):
            return Decision.reject(order_id, raw.reason, raw.message)
        d = Decision.from_script(order_id, raw)
        if d.reason is Reason.INVALID_ORDER and not d.message:
            # The script's INVALID_ORDER without a message of its own (an inexact sum
            # names itself): used = filled qty, requested = the new qty.
            d = dataclasses.replace(
                d,
                message=f"qty: the new total qty ({d.requested}) must be above the qty already "
                f"filled ({d.used}); to stop the rest of the order, cancel and release it",
            )
        return d

    def cancel_request(
        self,
        order_id: str,
        *,
        actor: str | None = None,
        firm: Firms = None,
        account: str | None = None,
    ) -> Decision:
        """Count a cancel message; the reservation stays until :meth:`release`.

        ``firm`` / ``account``: whose order, as for :meth:`replace`.
        """
        who = self._actor(actor)
        try:
            check_id(order_id, "order_id")
        except InvalidInput as exc:
            return Decision.reject(str(order_id), Reason.INVALID_ORDER, str(exc))
        k = self.keys
        raw = self._on_order(
            order_id,
            firm,
            account,
            lambda firm: self._call(
                self.scripts.cancel,
                [k.policy(firm), k.order(firm, order_id), k.agg(firm), k.audit(firm)],
                [order_id, who, self.audit_maxlen],
            ),
        )
        if isinstance(raw, Unlocated):
            return Decision.reject(order_id, raw.reason, raw.message)
        return Decision.from_script(order_id, raw)

    def release(
        self,
        order_id: str,
        reason: str,
        *,
        actor: str | None = None,
        firm: Firms = None,
        account: str | None = None,
    ) -> ReleaseResult:
        """Free what the order still reserves (cancel confirmed, venue reject, expiry).

        ``firm`` / ``account``: whose order, as for :meth:`replace`.
        """
        who = self._actor(actor)
        check_id(order_id, "order_id")
        text("reason", reason, 200)
        k = self.keys
        raw = self._on_order(
            order_id,
            firm,
            account,
            lambda firm: self._call(
                self.scripts.release,
                [
                    k.order(firm, order_id),
                    k.agg(firm),
                    k.open_index(firm),
                    k.audit(firm),
                    k.positions(firm),
                    k.policy(firm),
                    k.expiry(firm),
                ],
                [order_id, reason, who, self.audit_maxlen],
            ),
        )
        if isinstance(raw, Unlocated):
            return ReleaseResult(order_id, raw.reason, message=raw.message)
        return ReleaseResult(order_id, Reason(_s(raw[0])), int(raw[1]), bool(raw[2]))

    def fill(
        self,
        order_id: str,
        fill_id: str,
        qty: str | int | Decimal,
        price: str | int | Decimal,
        *,
        actor: str | None = None,
        pnl: str | int | Decimal | None = None,
        firm: Firms = None,
        account: str | None = None,
    ) -> FillResult:
        """Record a fill; a fill id seen before changes nothing.

        ``pnl`` is the fill's realized profit (negative: loss) in major units,
        e.g. ``"-1250.50"``, as the caller's position keeping computed it; it
        counts toward the daily loss budget of every node on the order's path.
        ``firm`` / ``account``: whose order, as for :meth:`replace`.
        """
        who = self._actor(actor)
        check_id(order_id, "order_id")
        check_id(fill_id, "fill_id")
        fill_qty, fill_price = parse_qty(qty), parse_price(price)
        units = self._units()
        if units is not None:
            notional_minor(fill_qty, fill_price, units)
        pnl_minor = "" if pnl is None else parse_signed_money(pnl, units or 0, "pnl")
        k = self.keys
        raw = self._on_order(
            order_id,
            firm,
            account,
            lambda firm: self._call(
                self.scripts.fill,
                [
                    k.order(firm, order_id),
                    k.agg(firm),
                    k.open_index(firm),
                    k.audit(firm),
                    k.positions(firm),
                    k.policy(firm),
                    k.controls(firm),
                    k.expiry(firm),
                ],
                [
                    order_id,
                    fill_id,
                    fill_qty,
                    fill_price.numerator,
                    fill_price.scale,
                    who,
                    self.audit_maxlen,
                    pnl_minor,
                ],
            ),
        )
        if isinstance(raw, Unlocated):
            return FillResult(order_id, fill_id, raw.reason, message=raw.message)
        return FillResult(
            order_id,
            fill_id,
            Reason(_s(raw[0])),
            int(raw[1]),
            int(raw[2]),
            int(raw[3]),
            int(raw[4]),
            bool(raw[5]),
            bool(raw[6]),
            bool(raw[7]),
            _s(raw[8]) if len(raw) > 8 else "",
        )

    # -- kill switches ------------------------------------------------------------

    def _kill_op(self, op: str, scope: str, by: str, reason: str) -> KillResult:
        text("by", by)
        text("reason", reason)
        kind, _, node_id = scope.partition(":")
        if scope != "global" and (kind not in KINDS or not node_id):
            raise InvalidInput(
                "scope", "must be 'global' or kind:id with kind in " + ", ".join(KINDS)
            )
        if scope == "global":
            firms = self._known_firms()
        else:
            try:
                firms = [self._firm_of_scope(scope)]
            except UnknownScope:
                # A node dropped from the policy may still carry a kill to lift.
                firms = self._firms_with_kill(scope) if op == "unkill" else []
                if not firms:
                    raise
        if op == "unkill":
            try:
                check_reenabler(by)
                self._check_kill_trigger(scope, by, firms)
            except ReenableRefused:
                # Refused before any script ran: recorded here, where the script would have.
                where = [*firms, None] if scope == "global" else firms
                audit_refused(self, where, {"op": op, "scope": scope, "by": by, "why": reason})
                raise
        with self._redis_errors(), self.durable.deferred():
            return self._kill_firms(op, scope, by, reason, firms)

    def _kill_firms(
        self, op: str, scope: str, by: str, reason: str, firms: list[str]
    ) -> KillResult:
        """The kill in every firm; a missing replica must not stop the firms after it."""
        already, open_orders = True, list[str]()
        if scope == "global":
            # The plain key first: from here on, every single-instance gateway
            # stops; on a cluster it is what a firm loaded later inherits.
            already = not self._set_global_plain(op, by, reason)
        k = self.keys
        for firm in firms:
            raw = self._call(
                self.scripts.kill,
                [
                    k.policy(firm),
                    k.kills(firm),
                    k.global_kill(firm),
                    k.open_index(firm),
                    k.audit(firm),
                ],
                [op, scope, by, reason, self.audit_maxlen, firm],
            )
            code = _s(raw[0])
            if code == Reason.REENABLE_REFUSED.value:
                raise ReenableRefused(f"{scope}: the kill may not be lifted by {by!r}")
            if code != Reason.OK.value:
                raise UnknownScope(f"{scope}: no such node in firm {firm}'s policy")
            already = already and bool(raw[1])
            open_orders.extend(_s(x) for x in raw[2:])
        return KillResult(scope, already, tuple(open_orders))

    def _set_global_plain(self, op: str, by: str, reason: str) -> bool:
        """Set or clear ``P:kill:global`` with its who/when; True if that changed it."""
        k = self.keys
        # Server time, like every other record: the stream entry id carries it too.
        seconds, micros = self._call(self.redis.time)
        at_ms = seconds * 1000 + micros // 1000
        record = msgpack.packb({"op": op, "scope": "global", "by": by, "why": reason, "code": "OK"})
        with self._redis_errors():
            maxlen = archive.global_maxlen(self.redis, k, self.audit_maxlen)
            pipe = self.redis.pipeline(transaction=not k.cluster)
            pipe.exists(k.global_kill())
            if op == "kill":
                pipe.set(k.global_kill(), reason)
                auto = int(by.startswith(SYSTEM_PREFIX))
                pipe.hset(
                    k.global_kill_meta(),
                    mapping={"by": by, "why": reason, "at_ms": at_ms, "auto": auto},
                )
            else:
                pipe.delete(k.global_kill())
                pipe.delete(k.global_kill_meta())
            pipe.xadd(k.audit(), {"m": record}, maxlen=maxlen, approximate=True)
            existed = bool(pipe.execute()[0])
        return existed != (op == "kill")

    def _check_kill_trigger(self, scope: str, by: str, firms: list[str]) -> None:
        """Refuse before anything changes when ``by`` set the kill automatically.

        kill-5.lua checks again atomically; this first look matters for the
        global kill, whose plain key is cleared before any firm's script runs.
        """
        with self._redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(self.keys.global_kill_meta(), "by", "auto")
            for f in firms:
                pipe.hget(self.keys.kills(f), scope)
            meta, *records = pipe.execute()
        found = [msgpack.unpackb(r, raw=False) for r in records if r is not None]
        if scope == "global" and meta[1] is not None:
            found.append({"by": _s(meta[0]), "auto": int(meta[1])})
        for rec in found:
            if rec.get("auto") == 1:
                check_reenabler(by, rec.get("by"))

    def _firms_with_kill(self, scope: str) -> list[str]:
        firms = self._known_firms()
        with self._redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for f in firms:
                pipe.hexists(self.keys.kills(f), scope)
            return [f for f, hit in zip(firms, pipe.execute(), strict=True) if hit]

    def kill(self, scope: str, *, by: str, reason: str) -> KillResult:
        """Stop every new order under ``scope``; returns the open orders to cancel."""
        return self._kill_op("kill", scope, by, reason)

    def unkill(self, scope: str, *, by: str, reason: str) -> KillResult:
        """Lift a kill switch. The reason is recorded with who lifted it.

        Raises :class:`ReenableRefused` for a ``system:`` identity, or for the
        identity that set the kill automatically.
        """
        return self._kill_op("unkill", scope, by, reason)

    def kills(self) -> list[Kill]:
        """Every active kill switch, with who, when and why where known."""
        k = self.keys
        firms = self._known_firms()
        with self._redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(k.global_kill())
            pipe.hgetall(k.global_kill_meta())
            for f in firms:
                pipe.hgetall(k.kills(f))
            raw = pipe.execute()
        out: dict[str, Kill] = {}
        if raw[0] is not None:
            meta = {_s(a): _s(b) for a, b in raw[1].items()}
            out["global"] = Kill(
                "global",
                meta.get("by", "unknown (set directly on Redis)"),
                meta.get("why", _s(raw[0])),
                int(meta["at_ms"]) if "at_ms" in meta else None,
            )
        for entries in raw[2:]:
            for scope, blob in entries.items():
                rec = msgpack.unpackb(blob, raw=False)
                out.setdefault(
                    _s(scope), Kill(_s(scope), rec.get("by"), rec.get("why"), rec.get("t"))
                )
        return sorted(out.values(), key=lambda x: x.scope)

    def ping(self) -> bool:
        """True when Redis answers and every script is loaded (and the function
        library, where this client may load it)."""
        with self._redis_errors():
            self.redis.ping()
            if self.scripts.library is not None:
                self.scripts.library.usable()
            shas = [b.script.sha for b in self.scripts.all()]
            loaded = self.redis.script_exists(*shas)
            for bound, ok in zip(self.scripts.all(), loaded, strict=True):
                if not ok:
                    self.redis.script_load(bound.script.script)
        return True

    # -- views --------------------------------------------------------------------

    def utilization(self, scope: str = "global") -> list[UtilizationRow]:
        """Per node under ``scope`` and per limit: used, limit, percent (for desk heads)."""
        policy = self.policy(refresh=True)
        if policy is None:
            return []
        if scope != "global" and policy.node(scope) is None:
            raise UnknownScope(f"{scope}: no such node in the loaded policy")
        return self._call(views.utilization, self.redis, self.keys, policy, scope)

    def audit_tail(self, count: int = 100) -> list[dict[str, Any]]:
        """The newest audit records of every stream, oldest first."""
        return self._call(
            lambda: views.audit_tail(self.redis, self.keys, self._known_firms(), count)
        )

    def archive_lag(self) -> list[archive.StreamLag]:
        """Per audit stream: records not yet archived (None: no archiver registered)."""
        return self._call(archive.archive_lag, self.redis, self.keys)

    def reconcile(
        self,
        records: Iterable[Any],
        *,
        by: str,
        reason: str = "reconciliation",
        apply: bool = False,
        firm: Firms = None,
    ) -> ReconcileReport:
        """Compare a drop copy (order and fill records) with the ledger; with ``apply``,
        repair each order atomically (:mod:`ledger.facade.reconcile`). ``firm``: the firms the
        caller acts for (others' accounts are reported unknown, never touched)."""
        return reconcile(self, records, by=by, reason=reason, apply=apply, firm=firm)

    def sweep(self, *, firm: Firms = None, batch: int = 500) -> dict[str, int]:
        """Retire every order due by server time now (time in force), firm by firm, in
        bounded calls of ``batch`` orders; returns the count retired per firm. Each
        is released as expired, audited and published (lua/sweepExpired-6.lua)."""
        if not 1 <= batch <= 10_000:
            raise InvalidInput("batch", f"must be 1 to 10000, got {batch!r}")
        firms = self._caller_firms(firm, None) or self._known_firms()
        k, out = self.keys, {}
        for f in firms:
            keys = [k.policy(f), k.agg(f), k.open_index(f), k.audit(f), k.positions(f)]
            keys.append(k.expiry(f))
            total, more = 0, True
            while more:
                raw = self._call(self.scripts.sweep_expired, keys, [batch, self.audit_maxlen])
                total, more = total + int(raw[1]), bool(int(raw[2]))
            out[f] = total
        return out

    def check(self) -> views.CheckReport:
        """Verify aggregates against the orders and every enforced budget."""
        policy = self.policy(refresh=True)
        return self._call(views.check, self.redis, self.keys, policy, self._known_firms())
