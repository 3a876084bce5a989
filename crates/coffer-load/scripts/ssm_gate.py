#!/usr/bin/env python3
"""Parameter Store benchmark harness (issue 3, item 9). For each store size it starts a durable
(non-dev) coffer server on a kept data directory, populates the parameter set once (later runs
reuse it), then measures health, get-parameters-by-path and get-parameter on that server (each after
waiting for an idle machine, with the CPU split of gate.py) and prints the ratios to health and the
GetParametersByPath latency of each store side by side.

A store spec is TOTAL:PER_PREFIX: TOTAL String parameters /load/<set>/p<k>/n<i>, PER_PREFIX under
each /load/<set>/p<k>; GetParametersByPath reads the first page of 10 under the middle prefix.
Each store has its own data directory, so a store of 1,000 really holds 1,000 parameters (plus
the SecureString read by get-parameter and the set's completion marker).

usage: ssm_gate.py [--duration S] [--connections N] [--stores 1000:1000,100000:10000]
                   [--data-root DIR] [--fresh] [--recursive] [--bin DIR] [--port P]
Only loopback; the servers are stopped on exit, the data directories kept (remove with --fresh).
"""
import os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gate import bench_env, measure, parser, start_server, stop_server  # noqa: E402

TARGET = 0.5


def main():
    ap = parser(4792)
    ap.add_argument("--stores", default="1000:1000,100000:10000")
    ap.add_argument("--data-root", default="/tmp/coffer-ssm-bench")
    ap.add_argument("--fresh", action="store_true", help="delete the kept stores first")
    ap.add_argument("--recursive", action="store_true", help="GetParametersByPath with Recursive=true")
    a = ap.parse_args()

    env = bench_env()
    if a.fresh:
        shutil.rmtree(a.data_root, ignore_errors=True)
    os.makedirs(a.data_root, exist_ok=True)
    summary = []
    for spec in a.stores.split(","):
        total, per = (int(x) for x in spec.split(":"))
        name = f"s{total}"
        data = os.path.join(a.data_root, f"{name}-{per}")
        quota = ["--max-standard-parameters", str(max(200_000, total + 100))]
        server = start_server(a, env, data, os.path.join(a.data_root, f"{name}.log"), quota)
        try:
            set_args = ["--parameter-set", name, "--parameters-total", str(total),
                        "--parameters-per-prefix", str(per)] + (["--recursive"] if a.recursive else [])
            # Setup outside the measured runs: populates once, a no-op when the set is complete.
            t0 = time.monotonic()
            for scenario in ("get-parameters-by-path", "get-parameter"):
                subprocess.run([os.path.join(a.bin, "coffer-load"), "--endpoint", f"http://127.0.0.1:{a.port}",
                                "--scenario", scenario, "--requests", "1", "--connections", str(a.connections),
                                *set_args], env=env, check=True, stdout=subprocess.DEVNULL)
            print(f"== store {total} parameters, {per} per prefix (setup {time.monotonic() - t0:.1f}s)", flush=True)
            r = {s: measure(a, server, env, s, set_args)
                 for s in ("health", "get-parameters-by-path", "get-parameter")}
        finally:
            stop_server(server)
        h = r["health"]["rps"]
        for s in ("get-parameters-by-path", "get-parameter"):
            ratio = r[s]["rps"] / h if h else 0.0
            ok = ratio >= TARGET and r[s]["errors"] == 0 and r["health"]["errors"] == 0
            print(f"   {s}/health = {100 * ratio:.1f}% (target >= {100 * TARGET:.0f}%): {'MET' if ok else 'MISSED'}")
        summary.append((total, per, r))
    by = [(t, p, r["get-parameters-by-path"]["latency_ms"]) for t, p, r in summary]
    print("GetParametersByPath latency by store size:")
    for t, p, lat in by:
        print(f"   store {t:>7} ({p} per prefix): p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f} ms")
    if len(by) >= 2:
        small, large = by[0][2], by[-1][2]
        print(f"   p50 ratio largest/smallest store = {large['p50'] / small['p50']:.2f}, "
              f"p99 ratio = {large['p99'] / small['p99']:.2f}")


if __name__ == "__main__":
    main()
