"""Test doubles for the request path: drive it without sockets, tasks or a real clock.

- ``FakeTransport``: an asyncio transport that records what is written, closes and aborts,
  pauses and resumes reading, and answers ``get_extra_info`` (peername, sockname).
- ``ManualLoop``: the part of an event loop the request path uses (``time``, ``call_soon``,
  ``call_at``, ``call_later``); time moves only when the test says so (``advance``), and what
  is due then runs in order, so timeouts fire deterministically and at once.
- ``CheckedStream``: the router's Stream with every state move checked against the table
  in common/stream_states.py (the proxy tests run every stream as one).
- ``Proxy``: a listener compiled from a small bootstrap dict (through ``compile/``, as the
  process compiles it), its clusters' hosts installed on the manual loop; ``connect`` makes a
  DownstreamConnection on a FakeTransport (``Client``). A pool's connect (a task that never
  waits here) gets a ``FakeUpstream`` (``Proxy.upstreams``), or connection refused for a host
  in ``Proxy.refused``; ``Proxy.upstream`` puts idle ones in a pool beforehand, and
  ``attach_upstream`` hands one to any routed stream.

Nothing in ``src`` imports this package; tests and fuzz harnesses do.
"""

from .checked_stream import CheckedStream
from .manual_loop import ManualLoop, Timer, run_sync
from .proxy import HCM, ROUTER, Client, FakeUpstream, Proxy, attach_upstream, bootstrap, compile_config, static_cluster
from .transport import FakeTransport

__all__ = ["HCM", "ROUTER", "CheckedStream", "Client", "FakeTransport", "FakeUpstream", "ManualLoop", "Proxy", "Timer",
           "attach_upstream", "bootstrap", "compile_config", "run_sync", "static_cluster"]
