"""W1 on DBOS, beside herald on the same PostgreSQL (docs/BENCH.md).

A workflow of three no-op steps; N workflows started from C threads, each
waiting for its own to end; completed workflows a second, e2e p50 / p99,
commits a workflow and this process's CPU. (PostgreSQL's CPU is not
measured here: the backends of connections that close during the run take
their CPU time with them.) DBOS runs its steps in its own
process: no HTTP call to a worker and no live stream, so it does less
than herald's W1.

    python3 -m venv env && env/bin/pip install dbos==3.4.0
    env/bin/python dbos_w1.py postgresql://postgres@127.0.0.1:5432/test 5000 200

It keeps its tables in a schema of its own (`dbos_w1`), dropped first.
"""

import statistics
import sys
import threading
import time

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig

url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SCHEMA = "dbos_w1"
engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def commits():
    """Commits of the database so far."""
    with engine.connect() as c:
        return c.execute(
            sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        ).scalar()


with engine.begin() as conn:
    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))

config: DBOSConfig = {
    "name": "herald_w1",
    "system_database_url": url,
    "dbos_system_schema": SCHEMA,
    "sys_db_pool_size": 16,
    "log_level": "WARNING",
}
DBOS(config=config)


@DBOS.step()
def step(i: int) -> int:
    return i


@DBOS.workflow()
def order(i: int) -> int:
    return step(1) + step(2) + step(3)


DBOS.launch()
latencies = []
lock = threading.Lock()
todo = iter(range(n))


def client():
    while True:
        with lock:
            i = next(todo, None)
        if i is None:
            return
        start = time.monotonic()
        order(i)
        with lock:
            latencies.append(time.monotonic() - start)


commits0 = commits()
cpu0 = time.process_time()
began = time.monotonic()
threads = [threading.Thread(target=client) for _ in range(c)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.monotonic() - began
cpu = time.process_time() - cpu0
commits1 = commits()
q = statistics.quantiles(latencies, n=100)
print(
    f"dbos w1 {n}/{c}: {n / wall:.1f} completed/s, e2e p50 {q[49] * 1000:.0f} ms p99 {q[98] * 1000:.0f} ms, "
    f"{(commits1 - commits0) / n:.1f} commits a workflow, CPU ms a workflow in Python {cpu * 1000 / n:.1f}"
)
DBOS.destroy()
with engine.begin() as conn:
    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
