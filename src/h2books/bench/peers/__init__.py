"""The peer servers' apps: the post's Twisted resources and one small ASGI app.

Every peer serves the same bookstore as ours: ``/`` (the JSON array of ids) and
``/book?id=N``, each body precomputed at start-up from the same data directory.
"""
