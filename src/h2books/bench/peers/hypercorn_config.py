"""Hypercorn's settings for the benchmark: ``hypercorn -c python:h2books.bench.peers.hypercorn_config``.

Hypercorn closes a connection after `keep_alive_max_requests` (1000 by default)
requests, with a GOAWAY over HTTP/2: every h2load run of 30,000 requests over one
connection would then fail. Lifted, so that its h2 runs count.
"""

keep_alive_max_requests = 10**9
