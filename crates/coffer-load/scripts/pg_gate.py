#!/usr/bin/env python3
"""PostgreSQL store figures (issue 8): GetSecretValue and PutSecretValue through one node and
through two nodes sharing one database, beside the embedded store in the same run.

Every configuration is durable (no --dev) on a fresh data dir; each PostgreSQL configuration gets
its own database (created here, dropped afterwards) on 127.0.0.1:5432 (user postgres, trust).
Two nodes: both serve one database, each takes half the connections from its own coffer-load
process, run at the same time; req/s is the sum, latency per node. CPU is split into the
servers, the load tools, PostgreSQL's processes and everything else.

usage: pg_gate.py [--duration S] [--connections N] [--bin DIR] [--port P] [--pg URL]
Only loopback; servers, temp dirs and databases are removed on exit.
"""
import argparse, base64, json, os, shutil, subprocess, sys, tempfile, time, uuid

import gate

UNSEAL_VAR = "COFFER_BENCH_UNSEAL_KEY"
SCENARIOS = ("get-secret-value", "put-secret-value")


def psql(a, sql):
    subprocess.run(["psql", a.pg.rsplit("/", 1)[0] + "/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)


def postgres_cpu_secs():
    """CPU of every PostgreSQL backend and helper process on the machine."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            total += gate.proc_cpu_secs(pid)
        except OSError:
            pass
    return total


def run_parallel(a, env, ports, scenario):
    """One coffer-load per node at the same time (connections split between them)."""
    per = max(1, a.connections // len(ports))
    if not gate.wait_quiet():
        print("warning: machine stayed busy; running anyway", flush=True)
    busy0, pg0, t0 = gate.machine_busy_secs(), postgres_cpu_secs(), time.monotonic()
    srv0 = {p: gate.proc_cpu_secs(pid) for p, pid in ports.items()}
    loads = {p: subprocess.Popen([os.path.join(a.bin, "coffer-load"), "--endpoint", f"http://127.0.0.1:{p}",
                                  "--scenario", scenario, "--duration", str(a.duration), "--connections", str(per),
                                  "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
             for p in ports}
    reports, tool = {}, 0.0
    for p, load in loads.items():
        out = load.stdout.read()
        _, status, ru = os.wait4(load.pid, 0)
        if status != 0:
            sys.exit(f"coffer-load failed for {scenario} on port {p}")
        reports[p] = json.loads(out)["scenarios"][0]
        tool += ru.ru_utime + ru.ru_stime
    wall = time.monotonic() - t0
    srv = sum(gate.proc_cpu_secs(pid) - srv0[p] for p, pid in ports.items())
    pg = postgres_cpu_secs() - pg0
    busy = gate.machine_busy_secs() - busy0
    n = sum(r["ok"] + r["errors"] for r in reports.values())
    rps = sum(r["rps"] for r in reports.values())
    lat = " | ".join(f"p50 {r['latency_ms']['p50']:.2f} p99 {r['latency_ms']['p99']:.2f}" for r in reports.values())
    errors = sum(r["errors"] for r in reports.values())
    print(f"  {scenario:<18} {rps:>9.0f} req/s  {lat} ms  errors {errors}  | cpu us/req: server "
          f"{1e6 * srv / max(1, n):.1f} load {1e6 * tool / max(1, n):.1f} postgres {1e6 * pg / max(1, n):.1f}"
          f"  others {max(0.0, busy - srv - tool - pg):.2f} s of {2 * wall:.1f}", flush=True)
    for r in reports.values():
        for s in r["error_samples"]:
            print("   ", s)
    return rps


def main():
    ap = gate.parser(4791)
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/postgres")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="coffer-pg-bench.")
    env = gate.bench_env(**{UNSEAL_VAR: base64.b64encode(os.urandom(32)).decode()})
    databases, servers = [], []
    summary = []
    try:
        for label, nodes, store in (("embedded, 1 node", 1, None), ("postgres, 1 node", 1, "pg"),
                                    ("postgres, 2 nodes", 2, "pg")):
            extra = ["--auto-unseal-env", UNSEAL_VAR]
            if store:
                db = f"coffer_bench_{uuid.uuid4().hex[:12]}"
                psql(a, f"CREATE DATABASE {db}")
                databases.append(db)
                extra += ["--storage", a.pg.rsplit("/", 1)[0] + f"/{db}?sslmode=disable"]
            ports = {}
            for i in range(nodes):
                port_args = argparse.Namespace(**{**vars(a), "port": a.port + i})
                data = os.path.join(tmp, f"{len(summary)}-{i}")
                server = gate.start_server(port_args, env, data, os.path.join(tmp, "server.log"), extra)
                servers.append(server)
                ports[a.port + i] = server.pid
            print(f"[{label}]", flush=True)
            row = {s: run_parallel(a, env, ports, s) for s in SCENARIOS}
            summary.append((label, row))
            for server in servers:
                gate.stop_server(server)
            servers.clear()
        print("\nsummary (req/s): " + "; ".join(
            f"{label}: Get {row['get-secret-value']:.0f}, Put {row['put-secret-value']:.0f}" for label, row in summary))
    finally:
        for server in servers:
            gate.stop_server(server)
        for db in databases:
            psql(a, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
