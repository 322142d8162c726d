"""The `dentbook` command: serve, migrate, demo data, and operator commands."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg

from dentbook import admin, demo, logs
from dentbook.embedded import EmbeddedError, EmbeddedPostgres, default_data_dir
from dentbook.migrate import MigrationError, migrate
from dentbook.settings import SettingsError, load_settings

log = logging.getLogger("dentbook")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        logs.configure(settings.log_level)
        result: int = args.run(args)
    except (SettingsError, admin.AdminError, MigrationError, EmbeddedError) as exc:
        print(f"dentbook: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        print(f"dentbook: cannot reach the database: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


@contextmanager
def privileged_url() -> Iterator[str]:
    """DATABASE_URL when given (a privileged role), else the embedded server's superuser."""
    settings = load_settings()
    if settings.database_url:
        yield settings.database_url
        return
    server = EmbeddedPostgres(Path(settings.data_dir) if settings.data_dir else default_data_dir())
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


def _serve(args: argparse.Namespace) -> int:
    from dentbook.serve import serve

    return serve(workers=args.workers, host=args.host, port=args.port)


def _migrate(args: argparse.Namespace) -> int:
    with privileged_url() as url:
        ran = migrate(url)
    print("applied: " + ", ".join(ran) if ran else "already up to date")
    return 0


def _demo(args: argparse.Namespace) -> int:
    with privileged_url() as url:
        migrate(url)
        demo.load(url)
    print("demo clinics loaded: " + ", ".join(demo.CLINICS))
    return 0


def _add_clinic(args: argparse.Namespace) -> int:
    with privileged_url() as url:
        new = admin.add_clinic(url, args.slug, args.name, args.time_zone, args.locale,
                               args.currency)
    print(f"clinic {args.slug} created ({new})")
    return 0


def _add_doctor(args: argparse.Namespace) -> int:
    days_off = []
    for d in args.day_off:
        try:
            days_off.append(date.fromisoformat(d))
        except ValueError:
            raise admin.AdminError(f"--day-off {d!r}: use YYYY-MM-DD") from None
    with privileged_url() as url:
        new = admin.add_doctor(url, args.clinic, args.name, args.hours, days_off)
    print(f"doctor {args.name!r} added to {args.clinic} ({new})")
    return 0


def _add_visit_type(args: argparse.Namespace) -> int:
    with privileged_url() as url:
        new = admin.add_visit_type(url, args.clinic, args.name_pl, args.name_en, args.minutes,
                                   args.deposit)
    print(f"visit type {args.name_en!r} added to {args.clinic} ({new})")
    return 0


def _add_staff(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise admin.AdminError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    with privileged_url() as url:
        admin.add_staff(url, args.clinic, args.email, password, args.role)
    print(f"staff account {args.email.lower()} can sign in at /{args.clinic}/staff/login")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dentbook",
        description="Booking for dental clinics. With no DATABASE_URL every command uses the "
                    "embedded PostgreSQL.")
    sub = p.add_subparsers(required=True, metavar="command")

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=text, description=text)
        c.set_defaults(run=run)
        return c

    s = command("serve", _serve, "Run the web server (embedded database, demo data and local "
                "Stripe unless DATABASE_URL / STRIPE_SECRET_KEY are set).")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=_positive, help="port (default 8000)")
    s.add_argument("--workers", type=_positive, default=1, help="server processes (default 1)")
    command("migrate", _migrate, "Create or update the database schema (privileged URL).")
    command("demo", _demo, "Load the demo clinics, doctors, visit types and staff (idempotent).")
    c = command("add-clinic", _add_clinic, "Create a clinic.")
    c.add_argument("slug", help="its path, e.g. klinika-gamma")
    c.add_argument("name", help="its display name")
    c.add_argument("--time-zone", default="Europe/Warsaw")
    c.add_argument("--locale", default="pl", choices=["pl", "en"])
    c.add_argument("--currency", default="pln")
    d = command("add-doctor", _add_doctor, "Add a doctor with weekly working hours.")
    d.add_argument("clinic", help="clinic slug")
    d.add_argument("name")
    d.add_argument("--hours", default="mon-fri 09:00-17:00",
                   help="e.g. 'mon-fri 09:00-17:00; sat 10:00-14:00' (clinic's local time)")
    d.add_argument("--day-off", action="append", default=[], metavar="YYYY-MM-DD")
    v = command("add-visit-type", _add_visit_type, "Add a visit type.")
    v.add_argument("clinic", help="clinic slug")
    v.add_argument("name_pl")
    v.add_argument("name_en")
    v.add_argument("--minutes", type=_positive, required=True)
    v.add_argument("--deposit", type=_positive, required=True,
                   help="deposit in minor units (5000 = 50.00)")
    a = command("add-staff", _add_staff, "Create a staff account (or set its password); the "
                "password is prompted for, or read from standard input.")
    a.add_argument("clinic", help="clinic slug")
    a.add_argument("email")
    a.add_argument("--role", choices=admin.ROLES,
                   help="viewer (reads the agenda), reception (also books, blocks, moves and "
                        "cancels) or admin (also settings); a new account without it is an admin, "
                        "an existing one keeps its role")
    return p
