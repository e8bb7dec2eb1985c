#!/usr/bin/env python3
"""How long a queued run waits for one of N idle `inoculab worker` processes to claim it,
and what N idle workers cost the database, on SQLite and on Postgres.

    python3 bench/claims.py [sqlite|postgres] [N_WORKERS]   (default: both, 8)

It builds nothing: it runs target/debug/inoculab (from `cargo build -p server` or the
tests' build) and the default model under .data/models. For each backend: a fresh data
directory (and, for Postgres, a fresh database on a `scripts/postgres-local` server), N
workers with the default lease (30 s, so idle polls back off to every 5 s), an idle
minute (Postgres: transactions committed in it, from pg_stat_database), then ROUNDS times
a one-run experiment queued with `inoculab run --detach` at a random moment; the wait is
the job's started_at minus its created_at (both written by the database's clock path,
milliseconds), after which the run is cancelled. One JSON line per backend on stdout.
"""
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/debug/inoculab"
MODEL = ROOT / ".data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
ROUNDS = int(os.environ.get("CLAIMS_ROUNDS", "12"))
IDLE_S = float(os.environ.get("CLAIMS_IDLE_S", "60"))

EXPERIMENT = """
name = "claim {i}"
dataset = "toy"
seeds = [{i}]
[[conditions]]
name = "baseline"
[training]
steps = 50
batch_size = 1
[evaluation]
test_prompts = ["default"]
max_tokens = 4
questions = [{{ kind = "builtin", limit = 1 }}]
judges = [{{ kind = "caps" }}]
"""


def ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


class Db:
    def __init__(self, data, url):
        self.data, self.url = data, url

    def rows(self, sql):
        if self.url:
            out = subprocess.run(["psql", self.url, "-AtF", "\t", "-c", sql], check=True, capture_output=True, text=True)
            return [line.split("\t") for line in out.stdout.splitlines() if line]
        with sqlite3.connect(self.data / "inoculab.sqlite", timeout=30) as c:
            return [[str(v) for v in r] for r in c.execute(sql).fetchall()]


def env(url):
    e = dict(os.environ, RUST_LOG="warn")
    e.pop("INOCULAB_DATABASE_URL", None)
    if url:
        e["INOCULAB_DATABASE_URL"] = url
    return e


def inoculab(data, url, *args, **kw):
    return subprocess.run(
        [str(BIN), "--data-dir", str(data), "--default-model", str(MODEL), *args],
        env=env(url), check=True, capture_output=True, text=True, **kw)


def measure(backend, n_workers):
    tmp = Path(tempfile.mkdtemp(prefix="claims-"))
    data = tmp / "data"
    url = None
    if backend == "postgres":
        server = subprocess.run([str(ROOT / "scripts/postgres-local"), "start"], check=True,
                                capture_output=True, text=True).stdout.strip()
        name = "claims_%d" % random.randrange(1 << 30)
        subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {name}"], check=True)
        url = server.rsplit("/", 1)[0] + "/" + name
    db = Db(data, url)
    inoculab(data, url, "dataset", "generate", "--preset", "spanish_all_caps", "--rows", "8", "--name", "toy")
    workers = [subprocess.Popen([str(BIN), "--data-dir", str(data), "--default-model", str(MODEL), "worker",
                                 "--name", f"w{i}"], env=env(url), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for i in range(n_workers)]
    try:
        time.sleep(15)  # every worker registered and backed off to its longest poll
        before = db.rows("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()") if url else None
        cpu0 = sum(cpu_s(w.pid) for w in workers)
        time.sleep(IDLE_S)
        cpu1 = sum(cpu_s(w.pid) for w in workers)
        idle = {"idle_s": IDLE_S, "workers_cpu_s": round(cpu1 - cpu0, 2)}
        if url:
            after = db.rows("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            idle["transactions_per_s"] = round((int(after[0][0]) - int(before[0][0])) / IDLE_S, 2)
        waits = []
        for i in range(ROUNDS):
            time.sleep(random.uniform(1.0, 6.0))
            f = tmp / f"e{i}.toml"
            f.write_text(EXPERIMENT.format(i=i))
            inoculab(data, url, "run", str(f), "--detach")
            job = db.rows("SELECT MAX(id) FROM jobs")[0][0]
            deadline = time.time() + 30
            while True:
                row = db.rows(f"SELECT created_at, started_at FROM jobs WHERE id = {job}")[0]
                if row[1] not in ("", "None"):
                    waits.append(ts(row[1]) - ts(row[0]))
                    break
                assert time.time() < deadline, "no worker claimed the job in 30 s"
                time.sleep(0.02)
            db.rows(f"UPDATE jobs SET cancel_requested = 1 WHERE id = {job} RETURNING id")
            while db.rows(f"SELECT status FROM jobs WHERE id = {job}")[0][0] in ("queued", "running"):
                time.sleep(0.1)
        waits.sort()
        return {"backend": backend, "workers": n_workers, "rounds": ROUNDS,
                "claim_wait_ms": {"p50": round(1000 * statistics.median(waits)),
                                  "max": round(1000 * waits[-1]),
                                  "all": [round(1000 * w) for w in waits]}, **idle}
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)
        if url:
            subprocess.run([str(ROOT / "scripts/postgres-local"), "stop"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def cpu_s(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    backends = [sys.argv[1]] if len(sys.argv) > 1 and sys.argv[1] in ("sqlite", "postgres") else ["sqlite", "postgres"]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    for b in backends:
        print(json.dumps(measure(b, n)), flush=True)
