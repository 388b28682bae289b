"""`h2books bench`: the post's crawl experiment and the h2load benchmark, ours against the peers.

* `h2books.bench.experiment` runs each client (ours, requests, httpx, h2load) against each
  server (ours and the installed peers) over HTTP/1.1 and HTTP/2, the post's experiment;
* `h2books.bench.loadtest` runs the h2load workloads of ``shared/BENCHMARKING.md``;
* `h2books.bench.peers` holds the peer servers' apps, all serving the same bookstore.
"""
