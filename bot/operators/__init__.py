"""Hand-off to human operators: triggers, queue, working hours, ownership, CSAT.

Modules, one concern each:

* ``handoff``   – the dialogue side: triggers, waiting state, out-of-hours intake, silence while owned
* ``queue``     – priority, per-agency queues, operators' presence, the waiting-time estimate
* ``hours``     – working hours (``working_hours.yml``) with Kazakhstan's holidays
* ``topics``    – editor-defined topics that require a human (``handoff_topics.yml``)
* ``service``   – the API the operator console calls (take, reply, transfer, hand_back, close …)
* ``feedback``  – CSAT 1-5 after a closed hand-off and after an answered appeal
* ``delivery``  – messages to the citizen through the outbox and their own channel
* ``desk``      – settings, clock, data files; resolution codes (``resolutions.yml``)

The console's entry points are re-exported here::

    from bot.operators import list_queue, take, reply, transfer, hand_back, close
"""

from bot.operators.desk import Desk, default_desk  # noqa: F401
from bot.operators.queue import (QueueItem, WaitEstimate, estimate_for, go_offline, heartbeat,  # noqa: F401
                                 list_queue, online_operators)
from bot.operators.service import (Conflict, HandoffError, InvalidInput, NotFound, NotOwner, close,  # noqa: F401
                                   hand_back, open_handoff, release_idle, reply, resolution_codes, take, transcript,
                                   transfer)
