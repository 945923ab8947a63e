"""Drills: prove against a live deployment that the controls hold.

Each drill sends probe orders through the listed gateways (HTTP, an
``order-entry`` token) on a drill account: one marked ``drill: true`` in the
policy, itself or through its firm, so that no real budget is touched.

* ``kill``: kills a drill scope, sends a probe through every gateway at once
  and measures how long after the kill's acknowledgement each refused it
  (``KILL_SWITCH``), then lifts the kill.
* ``storm``: sends a bounded burst of new orders and proves ``MESSAGE_RATE``
  stops it; where the path has ``cancel_to_new``, cancels until the ratio is
  crossed and proves ``CANCEL_RATIO`` refuses the next order. Needs a drill
  firm: a burst counts against every node of its path. Releases every order
  it placed.
* ``entitlement``: probes that break an entitlement (a trader or strategy not
  entitled to the account, a symbol or venue the account may not trade) are
  refused with ``NOT_ENTITLED``.
* ``collar``: a probe priced beyond the symbol's collar is refused with
  ``PRICE_COLLAR``.
* ``failover`` (Sentinel): probes through the library and the gateways while a
  sentinel is asked for ``SENTINEL FAILOVER``; measures each prober's
  unavailability window and counts acknowledged probes the new primary does
  not know (lost). Needs a drill firm, as the storm.

A probe that is accepted when it should not be is released at once and the
drill fails. Each drill writes an audit record (``op = "drill"``: who, which
drill, run id, outcome) to the drill firm's audit stream when it starts and
when it ends; the kill and unkill are audited as any other.
"""

from ledger.ops.drills.controls import collar_drill, entitlement_drill, kill_drill, storm_drill
from ledger.ops.drills.failover import Answer, ProberVerdict, failover_drill, failover_verdicts
from ledger.ops.drills.probes import DRILLS, MAX_BURST, DrillReport, Gateway, Probe, Target, target

__all__ = [
    "DRILLS",
    "MAX_BURST",
    "Target",
    "Gateway",
    "Probe",
    "DrillReport",
    "target",
    "kill_drill",
    "storm_drill",
    "entitlement_drill",
    "collar_drill",
    "failover_drill",
    "failover_verdicts",
    "Answer",
    "ProberVerdict",
]
