#!/usr/bin/env python3
"""Benchmark harness: starts a durable (non-dev) coffer server on a temp data dir, runs coffer-load
scenarios back to back against it, and reports each scenario's figures together with the CPU split
(server, load tool, everything else on the machine) so interference from other processes is visible.

usage: gate.py [--duration S] [--connections N] [--threads T] [--put-secrets K] [--bin DIR] [--port P] [scenario ...]
Only loopback; the server and temp dir are removed on exit.
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request

TICK = os.sysconf("SC_CLK_TCK")
KEY_ID, SECRET = "AKIALOADTEST0000001", "loadtestsecretloadtestsecretloadtest0001"


def machine_busy_secs():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def stat_cpu_secs(path):
    """utime + stime of a /proc/.../stat file, in seconds."""
    with open(path) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def proc_cpu_secs(pid):
    return stat_cpu_secs(f"/proc/{pid}/stat")


def writer_stats(pid, comm="coffer-audit-wr"):
    """(CPU seconds, voluntary context switches) of the server's audit writer thread, or None.
    Per durable group the writer sleeps twice in the kernel (the write, the flush), and once more
    when it then finds its queue empty: groups = switches / 3 .. switches / 2."""
    root = f"/proc/{pid}/task"
    for tid in os.listdir(root):
        try:
            with open(f"{root}/{tid}/comm") as f:
                if f.read().strip() != comm:
                    continue
            cpu = stat_cpu_secs(f"{root}/{tid}/stat")
            with open(f"{root}/{tid}/status") as f:
                vol = next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
            return cpu, vol
        except (OSError, StopIteration):
            continue
    return None


def wait_quiet(limit_secs=180, threshold=0.15):
    """Waits (bounded) until the machine is mostly idle, so other people's builds do not skew a run."""
    deadline = time.monotonic() + limit_secs
    while time.monotonic() < deadline:
        b0 = machine_busy_secs()
        time.sleep(1)
        if (machine_busy_secs() - b0) / os.cpu_count() < threshold:
            return True
    return False


def start_server(a, env, data_dir, log_path, extra=()):
    """Starts a durable server on a.port and waits for /health."""
    log = open(log_path, "a")
    server = subprocess.Popen([os.path.join(a.bin, "coffer"), "server", "--listen", f"127.0.0.1:{a.port}",
                               "--data-dir", data_dir, *extra], env=env, stdout=log, stderr=log)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{a.port}/health", timeout=1).read()
            return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.1)
    stop_server(server)
    sys.exit("server did not come up")


def stop_server(server):
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def measure(a, server, env, scenario, extra=()):
    """Runs one coffer-load scenario (after waiting for an idle machine) and returns its JSON report
    with the CPU split; prints one line."""
    if not wait_quiet():
        print("warning: machine stayed busy; running anyway", flush=True)
    cmd = [os.path.join(a.bin, "coffer-load"), "--endpoint", f"http://127.0.0.1:{a.port}",
           "--scenario", scenario, "--duration", str(a.duration), "--connections", str(a.connections), "--json", *extra]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    busy0, srv0, t0 = machine_busy_secs(), proc_cpu_secs(server.pid), time.monotonic()
    w0 = writer_stats(server.pid)
    load = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = load.stdout.read()
    _, status, ru = os.wait4(load.pid, 0)
    wall = time.monotonic() - t0
    busy, srv = machine_busy_secs() - busy0, proc_cpu_secs(server.pid) - srv0
    w1 = writer_stats(server.pid)
    tool = ru.ru_utime + ru.ru_stime
    if status != 0:
        sys.exit(f"coffer-load failed for {scenario}")
    r = json.loads(out)["scenarios"][0]
    r["cpu"] = {"wall": wall, "server": srv, "load_tool": tool, "others": max(0.0, busy - srv - tool),
                "server_us_per_req": 1e6 * srv / max(1, r["ok"] + r["errors"]),
                "load_us_per_req": 1e6 * tool / max(1, r["ok"] + r["errors"])}
    c = r["cpu"]
    print(f"{scenario:<22} {r['rps']:>10.1f} req/s  p50 {r['latency_ms']['p50']:.3f} p90 {r['latency_ms']['p90']:.3f} "
          f"p99 {r['latency_ms']['p99']:.3f} max {r['latency_ms']['max']:.3f} ms  errors {r['errors']}  | cpu s: "
          f"server {c['server']:.2f} ({c['server_us_per_req']:.1f} us/req) load {c['load_tool']:.2f} "
          f"({c['load_us_per_req']:.1f} us/req) others {c['others']:.2f} of {2 * wall:.1f}", flush=True)
    # `/health` writes no audit record: the writer's figures would be noise over no groups.
    if w0 and w1 and scenario != "health":
        n = max(1, r["ok"] + r["errors"])
        c["audit_writer_us_per_req"] = 1e6 * (w1[0] - w0[0]) / n
        sw = max(1, w1[1] - w0[1])
        c["audit_records_per_group"] = [2 * n / sw, 3 * n / sw]
        print(f"{'':<22} audit writer thread {c['audit_writer_us_per_req']:.1f} us/req (part of the server's); "
              f"{2 * n / sw:.1f}-{3 * n / sw:.1f} records per durable group", flush=True)
    for s in r["error_samples"]:
        print("   ", s)
    return r


def parser(port):
    """The options every harness takes (each script adds its own)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--port", type=int, default=port)
    return ap


def bench_env(**extra):
    """The environment for the servers (fixed root credentials) and the load tool (signed as root)."""
    return dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=KEY_ID, COFFER_ROOT_SECRET_ACCESS_KEY=SECRET,
                AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, **extra)


def main():
    ap = parser(4791)
    ap.add_argument("--put-secrets", type=int)
    ap.add_argument("scenarios", nargs="*", default=["health", "get-secret-value", "put-secret-value"])
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="coffer-bench.")
    env = bench_env()
    server = start_server(a, env, os.path.join(tmp, "data"), os.path.join(tmp, "server.log"))
    try:
        results = []
        for scenario in a.scenarios:
            extra = ["--put-secrets", str(a.put_secrets)] if a.put_secrets else []
            results.append(measure(a, server, env, scenario, extra))
        rps = {r["scenario"]: r["rps"] for r in results}
        if rps.get("health") and "get-secret-value" in rps:
            print(f"GetSecretValue/health = {100 * rps['get-secret-value'] / rps['health']:.1f}%")
    finally:
        stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
