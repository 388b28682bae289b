"""The names the command line offers, kept apart so that `h2books` starts without loading
the benchmark (every `h2books` command builds the parser, ``bench`` included)."""

__all__ = [
    "ANSWER_CLIENT_KEYS",
    "APP_NAMES",
    "CLIENT_KEYS",
    "DEFAULT_CLIENT_KEYS",
    "SERVER_NAMES",
    "WORKLOAD_KEYS",
]

# Which bookstore the servers run (`--app`); servers.py has a set of servers per app.
APP_NAMES = ("native", "asgi", "wsgi")
SERVER_NAMES = (
    "ours",
    "twisted",
    "hypercorn",
    "granian",
    "uvicorn",
    "uvicorn-httptools",
    "uvicorn-zttp",
    "gunicorn",
)
CLIENT_KEYS = (
    "ours-h1",
    "ours-h1x6",
    "ours-h2",
    "ours-h2-push",
    "ours-h3",
    "requests-h1",
    "httpx-h1",
    "httpx-h2",
    "h2load-h1",
    "h2load-h2",
)
# httpx over HTTP/1.1 is left out of the default run: the post had no such client.
DEFAULT_CLIENT_KEYS = (
    "ours-h1",
    "ours-h2",
    "ours-h3",
    "requests-h1",
    "httpx-h2",
    "h2load-h1",
    "h2load-h2",
)
# The answer (`h2books bench --rtt ...`): the protocols side by side, all with our client.
ANSWER_CLIENT_KEYS = ("ours-h1", "ours-h1x6", "ours-h2", "ours-h2-push", "ours-h3")
WORKLOAD_KEYS = ("h2-1c", "h2-10c", "h1-10c", "h1-1c")
