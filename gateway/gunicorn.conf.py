"""gunicorn settings for the gateway, from environment variables with defaults.

    gunicorn -c gateway/gunicorn.conf.py 'gateway:create_app()'

========================================  =================  ==============================
``LEDGER_GATEWAY_BIND``                   ``127.0.0.1:8101`` address to listen on
``LEDGER_GATEWAY_WORKERS``                ``cores``          worker processes
``LEDGER_GATEWAY_THREADS``                ``4``              threads per worker
``LEDGER_GATEWAY_WORKER_CLASS``           ``gthread``        gunicorn worker class
``LEDGER_GATEWAY_KEEPALIVE_S``            ``5``              idle keep-alive connection closed after
``LEDGER_GATEWAY_TIMEOUT_S``              ``30``             silent worker is restarted after
``LEDGER_GATEWAY_ACCESS_LOG``             (off)              ``-`` for stdout, or a file
``LEDGER_GATEWAY_CONTROL_SOCKET``         (off)              gunicorn 27+ control socket path
``PROMETHEUS_MULTIPROC_DIR``              a fresh temp dir   where workers write metrics
========================================  =================  ==============================

The app itself reads ``LEDGER_REDIS_URL``, ``LEDGER_REDIS_TIMEOUT_MS`` and the
other ``LEDGER_*`` settings (see :mod:`gateway`). Each worker connects to Redis
lazily, after the fork.

Why gthread: a sync worker closes the connection after every answer, so every
order paid a TCP connect and a worker's accept. A gthread worker keeps
connections alive (a client, or the nginx edge's upstream pool, sends order
after order on one connection) and parks idle ones in its event loop without
holding a thread. A decision is one Redis round trip, during which the GIL is
free, so a few threads per process keep a core busy; more processes than
cores only add switching. The worker still reads a request in a thread, so a
slow client holds a thread as it held a sync worker: keep the edge in front.
"""

import os
import shutil
import tempfile
from typing import Any

wsgi_app = "gateway:create_app()"
bind = os.environ.get("LEDGER_GATEWAY_BIND", "127.0.0.1:8101")
workers = int(os.environ.get("LEDGER_GATEWAY_WORKERS", str(os.cpu_count() or 1)))
worker_class = os.environ.get("LEDGER_GATEWAY_WORKER_CLASS", "gthread")
threads = int(os.environ.get("LEDGER_GATEWAY_THREADS", "4"))
timeout = int(os.environ.get("LEDGER_GATEWAY_TIMEOUT_S", "30"))
graceful_timeout = int(os.environ.get("LEDGER_GATEWAY_GRACEFUL_TIMEOUT_S", "10"))
# Longer than the edge keeps an idle upstream connection (gateway/nginx.conf), so
# the edge never sends an order on a connection gunicorn is closing.
keepalive = int(os.environ.get("LEDGER_GATEWAY_KEEPALIVE_S", "5"))
accesslog = os.environ.get("LEDGER_GATEWAY_ACCESS_LOG") or None
# Tokens (a dashboard ?token=, a bearer header, the cookie) are cut out of every
# access and error log line, whatever access_log_format says.
logger_class = "gateway.redact.RedactingLogger"
loglevel = os.environ.get("LEDGER_GATEWAY_LOG_LEVEL", "info")
# gunicorn 27+ opens a control socket at one fixed path per user; several
# instances on one machine would share it, so it is off unless a path is given.
control_socket = os.environ.get("LEDGER_GATEWAY_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
preload_app = False  # see the metrics directory below
proc_name = os.environ.get("LEDGER_GATEWAY_NAME", "ledger-gateway")

# Prometheus multiprocess mode: workers write their values to files in one
# directory and /metrics sums them. The directory must be set before a worker
# imports prometheus_client, so it is chosen here, in the master (and the app
# must not be preloaded). It is created when the server starts.
_own_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _own_metrics_dir = os.path.join(tempfile.gettempdir(), f"ledger-gateway-metrics-{os.getpid()}")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def on_starting(server: Any) -> None:
    """Start from an empty metrics directory: files of an earlier run would be summed in."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges stop counting; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
