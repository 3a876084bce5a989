#!/usr/bin/env python3
"""Audit cost: GetSecretValue throughput of the same build with auditing on and with auditing
replaced by a no-op (`coffer server --unaudited-benchmark-baseline`), in one run: two durable
servers on fresh data dirs, scenarios alternated (off, on, off, on, ...) so drift hits both alike.
Target (issue 6): audited >= 80 % of the no-op baseline.

Every audited GetSecretValue waits for its record to be committed (group-committed with the
other records queued meanwhile, one fsync per group), so the ratio depends on how many requests
are in flight: report it for the default 16 connections and for more (e.g. --connections 256).

usage: audit_gate.py [--duration S] [--connections N] [--rounds R] [--bin DIR] [--port P]
"""
import os, shutil, tempfile

import gate


def main():
    ap = gate.parser(4791)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="coffer-audit-bench.")
    env = gate.bench_env()
    results = {"noop": [], "audited": []}
    try:
        for _ in range(a.rounds):
            for mode, extra in (("noop", ["--unaudited-benchmark-baseline"]), ("audited", [])):
                data = os.path.join(tmp, f"{mode}-{len(results[mode])}")
                server = gate.start_server(a, env, data, os.path.join(tmp, f"{mode}.log"), extra)
                try:
                    print(f"[{mode}] ", end="")
                    results[mode].append(gate.measure(a, server, env, "get-secret-value")["rps"])
                finally:
                    gate.stop_server(server)
        noop = sorted(results["noop"])[len(results["noop"]) // 2]
        audited = sorted(results["audited"])[len(results["audited"]) // 2]
        print(f"GetSecretValue audited/no-op = {100 * audited / noop:.1f}%  "
              f"(medians {audited:.0f} / {noop:.0f} req/s, {a.connections} connections)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
