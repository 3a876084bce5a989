"""A private PostgreSQL server for tests that must see a password change take effect.

The machine's own server trusts every connection from 127.0.0.1, so any password logs in and a
rotation function's setSecret (which first tries the pending password) never needs to change
anything. This one is initdb'ed into a temporary directory with scram-sha-256 for TCP, started on
a free port with the binaries Debian's postgresql package installs, and removed afterwards.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pg8000.native


def bindir():
    """The newest installed server's binaries, or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, port, password, ctl):
        self.host = "127.0.0.1"
        self.port = port
        self.password = password
        self._ctl = ctl

    def url(self):
        return "postgres://postgres:%s@%s:%d/postgres?sslmode=disable" % (
            self.password, self.host, self.port)

    def stop(self):
        """Stops the server at once, as a crash would (no checkpoint)."""
        self._ctl("stop", "-m", "immediate")

    def start(self):
        self._ctl("start")

    def connect(self, user="postgres", password=None, database="postgres"):
        """A connection over TCP, authenticated by password (raises when it is wrong)."""
        return pg8000.native.Connection(user, host=self.host, port=self.port,
                                        password=password or self.password, database=database,
                                        timeout=10)

    def logs_in(self, user, password):
        try:
            self.connect(user, password).close()
            return True
        except pg8000.native.DatabaseError as e:
            # 28P01: invalid_password. Anything else is not an answer to the question.
            assert e.args and e.args[0].get("C") == "28P01", e
            return False


@contextlib.contextmanager
def scram_cluster(superuser_password="cluster-superuser-pw"):
    bins = bindir()
    assert bins, "no PostgreSQL server binaries under /usr/lib/postgresql"
    tmp = tempfile.mkdtemp(prefix="coffer-pg-")
    data = os.path.join(tmp, "data")
    pwfile = os.path.join(tmp, "pw")
    with open(pwfile, "w") as f:
        f.write(superuser_password + "\n")
    # initdb and postgres refuse to run as root.
    prefix = []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(pwfile, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args):
        p = subprocess.run(prefix + [os.path.join(bins, args[0]), *args[1:]],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, "%s failed: %s%s" % (args[0], p.stdout, p.stderr)

    port = _free_port()

    def ctl(command, *args):
        run("pg_ctl", "-D", data, "-w", "-t", "60", "-l", os.path.join(tmp, "log"), "-o",
            "-p %d -k %s -c listen_addresses=127.0.0.1" % (port, tmp), command, *args)

    started = False
    try:
        run("initdb", "-D", data, "-U", "postgres", "--pwfile", pwfile,
            "--auth-host=scram-sha-256", "--auth-local=peer")
        ctl("start")
        started = True
        yield Cluster(port, superuser_password, ctl)
    finally:
        if started:
            subprocess.run(prefix + [os.path.join(bins, "pg_ctl"), "-D", data, "-m", "immediate",
                                     "stop"], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
