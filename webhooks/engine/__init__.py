"""The delivery engine, in four parts (docs/WEBHOOKS.md, docs/ARCHITECTURE.md):

- `store`: the only database operations on delivery state: claim a batch under a lease,
  record a batch's results, move webhook counters.
- `policy`: pure functions from an attempt's outcome to the delivery's next state (and
  to the webhook's counter changes); no database, no network.
- `sending`: one signed HTTP request per delivery, concurrently over one pooled session.
- `loop`: claims, sends and records batches while a backlog remains.

`loop` imports the other three and `webhooks.scheduling` (which owns every way a drain is
requested); nothing imports `loop` back except the task entry points in `webhooks.tasks`.
"""
