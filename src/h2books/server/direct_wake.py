"""Complete a future and resume the task waiting on it at once, inside the protocol callback
that completes it, rather than one trip through the event loop later.

Why: a WebSocket app spends its life waiting in `receive()`. When a message arrives, an
ordinary `set_result` schedules the app's task (`call_soon`), and the answer goes out in
the loop's next iteration, after the read callback has returned and the loop has polled
again. Resumed at once, the app answers inside the read callback, and the answer leaves
with that read's own write (benchmarks/PROFILE.md, "WebSocket echo: the app resumed
inside the read").

How: a task waiting on a future has registered one done-callback on it, its wake-up, with
its context. `wake_now` takes that callback off the future, completes the future (which
then schedules nothing) and calls the callback itself, in that context: the task takes
exactly the step the loop would have run, as the current task, in its own context. The
app stays an ordinary task throughout: whatever else it awaits, its cancellation,
timeouts, context variables and current task are the loop's usual.

Only in the plain case: one callback, and no task running (one task cannot take its step
inside another's: from inside a task, it is an ordinary `set_result`).
"""

from __future__ import annotations

import asyncio

_current_task = asyncio.current_task


def wake_now(future: asyncio.Future[None]) -> None:
    """`future.set_result(None)`, its one waiting task resumed here and now (see above)."""
    # A list of (callback, context) in asyncio's C and Python futures alike (None if empty).
    callbacks = future._callbacks
    if not callbacks or len(callbacks) != 1 or _current_task(future.get_loop()) is not None:
        future.set_result(None)
        return
    callback, context = callbacks[0]
    future.remove_done_callback(callback)
    future.set_result(None)  # no callback left: nothing is scheduled
    # A task's wake-up handles what its step raises (the task ends with it), so an
    # exception from the app stays the app's, as when the loop runs the step.
    context.run(callback, future)
