#!/usr/bin/env python3
"""What one durable write costs this machine: an 8 KiB write at a block-aligned offset of a
zero-filled file, made durable, the way the audit writer does it (direct I/O + fdatasync) and the
alternatives, each N times. Prints wall time and the CPU the calling thread spent per write
(system CPU is the kernel's block layer, the virtio kick and interrupt, and the context switches
while waiting). A durable audit group pays this once, whatever its size.

usage: sync_cost.py [--dir DIR] [--n N]     (DIR on the disk the data directory uses; default .)
"""
import argparse, mmap, os, resource, time


def run(path, name, flags, fdatasync, rwf, n):
    fd = os.open(path, os.O_RDWR | flags)
    buf = mmap.mmap(-1, 8192)  # page-aligned, as direct I/O needs
    r0, t0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
    for i in range(n):
        os.pwritev(fd, [buf], (i % 400) * 8192, *([rwf] if rwf else []))
        if fdatasync:
            os.fdatasync(fd)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_THREAD)
    os.close(fd)
    print(f"{name:24} wall {wall / n * 1e6:6.1f} us   cpu user {(r1.ru_utime - r0.ru_utime) / n * 1e6:5.1f}"
          f" sys {(r1.ru_stime - r0.ru_stime) / n * 1e6:5.1f} us   voluntary switches"
          f" {(r1.ru_nvcsw - r0.ru_nvcsw) / n:.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=".")
    ap.add_argument("--n", type=int, default=3000)
    a = ap.parse_args()
    path = os.path.join(a.dir, f".sync_cost.{os.getpid()}")
    try:
        with open(path, "wb") as f:
            f.write(bytes(4 << 20))
            f.flush()
            os.fsync(f.fileno())
        for name, flags, sync, rwf in (("direct + fdatasync", os.O_DIRECT, True, 0),
                                       ("direct, RWF_DSYNC", os.O_DIRECT, False, os.RWF_DSYNC),
                                       ("buffered + fdatasync", 0, True, 0),
                                       ("buffered, RWF_DSYNC", 0, False, os.RWF_DSYNC)):
            run(path, name, flags, sync, rwf, a.n)
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
