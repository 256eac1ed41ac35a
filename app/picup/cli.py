"""The ``picup`` command."""

from __future__ import annotations

import getpass
import hashlib
import os
import sys
from pathlib import Path

import click

from . import config, db, logs, migrations, storage


def _settings(**overrides) -> config.Settings:
    try:
        settings = config.load(overrides)
    except config.ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    logs.setup(settings.log_level)
    return settings


def _prepare(settings):
    from . import prepare

    try:
        return prepare(settings)
    except storage.StoreUnavailable as exc:
        raise click.ClickException(f"Picup will not start: {exc}") from None
    except migrations.MigrationError as exc:
        raise click.ClickException(str(exc)) from None


def _open_db(settings) -> None:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    migrations.migrate(settings.database_path)
    db.open_database(settings.database_path)


server_options = [
    click.option("--host", help="Address to listen on (PICUP_HOST).", default=None),
    click.option("--port", type=int, help="Port to listen on (PICUP_PORT).", default=None),
    click.option("--data", "data_dir", help="Data folder (PICUP_DATA_DIR).", default=None),
]


def with_options(options):
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@click.group()
@click.version_option(package_name="picup")
def main():
    """Picup, the family photo album."""


def _serve(host, port, data_dir, with_worker: bool):
    from . import create_app, server
    from .worker import Worker

    settings = _settings(host=host, port=port, data_dir=data_dir)
    try:
        app = create_app(settings)
    except storage.StoreUnavailable as exc:
        raise click.ClickException(f"Picup will not start: {exc}") from None
    store = app.extensions["picup"].store
    worker = Worker(settings, store) if with_worker else None
    http = server.create_server(app, settings)
    shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0", "::") else settings.host
    click.echo(
        f"\nPicup is running: http://{shown}:{settings.port}\n"
        f"  Open it in a browser. The first visit creates the first account, the family's admin.\n"
        f"  Photos and the database are kept in {settings.data_path}\n"
        f"  Stop with Ctrl+C.\n",
        err=True,
    )
    if worker:
        worker.start()
    server.serve(http, settings, on_stop=worker.stop if worker else None)


@main.command()
@with_options(server_options)
def run(host, port, data_dir):
    """Serve the web app with the worker in one process."""
    _serve(host, port, data_dir, with_worker=True)


@main.command()
@with_options(server_options)
def serve(host, port, data_dir):
    """Serve the web app only (run `picup worker` beside it)."""
    _serve(host, port, data_dir, with_worker=False)


@main.command()
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def worker(data_dir):
    """Run the background worker only."""
    from .worker import Worker

    settings = _settings(data_dir=data_dir)
    Worker(settings, _prepare(settings)).run_forever()


@main.command()
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def migrate(data_dir):
    """Bring the database schema up to date (a snapshot is kept first)."""
    settings = _settings(data_dir=data_dir)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    try:
        before, after = migrations.migrate(settings.database_path)
    except migrations.MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    if before == after:
        click.echo(f"The database is up to date (schema version {after}).")
    else:
        click.echo(f"The database was upgraded from schema version {before} to {after}.")


@main.command("tasks")
@click.option("--retry", "retry_ids", type=int, multiple=True, help="Queue this failed task again (repeatable).")
@click.option("--retry-all", is_flag=True, help="Queue every failed task again.")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def tasks_command(retry_ids, retry_all, data_dir):
    """List the worker's failed tasks, with their reasons, and retry them."""
    from . import tasks

    settings = _settings(data_dir=data_dir)
    _open_db(settings)
    with db.connection():
        if retry_ids or retry_all:
            count = tasks.retry_failed(list(retry_ids) or None)
            click.echo(f"Queued {count} failed task{'s' if count != 1 else ''} again.")
            return
        failed = tasks.failed()
        if not failed:
            click.echo("No failed tasks.")
            return
        for task in failed:
            click.echo(f"{task.id:>6}  {task.kind:<16} {task.payload:<24} {task.updated_at:%Y-%m-%d %H:%M}  "
                       f"{task.last_error}")
        click.echo("Retry with: picup tasks --retry ID  (or --retry-all)")


@main.group()
def user():
    """Family members' accounts."""


@user.command("add")
@click.argument("username")
@click.option("--display-name", default=None, help="The name shown in Picup.")
@click.option("--admin", is_flag=True, help="Let this person manage the family's accounts.")
@click.option("--language", type=click.Choice(["en", "ko"]), default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def user_add(username, display_name, admin, language, password_stdin, data_dir):
    """Add a family member."""
    from . import accounts
    from .errors import PicupError

    settings = _settings(data_dir=data_dir)
    _open_db(settings)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise click.ClickException("The two passwords differ.")
    with db.connection():
        try:
            first = accounts.needs_setup()
            created = accounts.create_user(
                username, password, display_name=display_name, is_admin=admin or first, language=language
            )
        except PicupError as exc:
            raise click.ClickException(str(exc)) from None
    role = "an admin" if created.is_admin else "a member"
    click.echo(f"Added {created.username} ({created.display_name}) as {role}.")


@user.command("list")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def user_list(data_dir):
    """List the family's accounts."""
    from .models import User

    settings = _settings(data_dir=data_dir)
    _open_db(settings)
    with db.connection():
        for person in User.select().order_by(User.id):
            click.echo(f"{person.id:>4}  {person.username:<24} {person.display_name:<24} "
                       f"{'admin' if person.is_admin else 'member'}")


def _files(folder: Path):
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(storage.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@main.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--user", "username", required=True, help="Whose library the photos go into.")
@click.option("--album", "album_title", default=None, help="Also put them in this album (made if needed).")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def import_folder(folder, username, album_title, data_dir):
    """Add every photo and video under FOLDER. The folder is only read, never changed;
    running it again continues where it stopped."""
    from . import library
    from .errors import PicupError
    from .i18n import translate
    from .media.sniff import sniff_file
    from .models import Album, User
    from .uploads import last_modified_from

    settings = _settings(data_dir=data_dir)
    store = _prepare(settings)
    with db.connection():
        owner = User.get_or_none(User.username == username)
        if owner is None:
            raise click.ClickException(f"There is no user called {username!r} (see `picup user list`).")
        album = None
        if album_title:
            album = Album.get_or_none((Album.owner == owner) & (Album.title == album_title))
            album = album or library.create_album(owner, album_title)
    files = list(_files(folder))
    added, duplicates, rejected = 0, 0, []
    with click.progressbar(files, label="Importing", show_pos=True, file=sys.stderr,
                           item_show_func=lambda p: p.name if p else "") as bar:
        for path in bar:
            try:
                if sniff_file(path) is None:
                    raise PicupError("unsupported_type", name=path.name)
                with db.connection():
                    if library.already_have(owner, _sha256(path), album):
                        duplicates += 1
                        continue
                    with open(path, "rb") as fh:
                        received = library.receive(fh, settings.tmp_path, limit=settings.max_upload_size,
                                                   name=path.name)
                    modified = last_modified_from(str(int(path.stat().st_mtime * 1000)))
                    result = library.ingest(store, received, owner=owner, filename=path.name, album=album,
                                            last_modified=modified)
                duplicates += result.duplicate
                added += not result.duplicate
            except PicupError as exc:
                rejected.append((path, translate(f"errors.{exc.code}", "en", **exc.params)))
                if exc.code in ("storage_full", "storage_unavailable"):
                    break
            except OSError as exc:
                rejected.append((path, exc.strerror or str(exc)))
    click.echo(f"Added {added}, already there {duplicates}, could not be added {len(rejected)}.")
    for path, reason in rejected[:50]:
        click.echo(f"  {path.relative_to(folder)}: {reason}")
    if len(rejected) > 50:
        click.echo(f"  … and {len(rejected) - 50} more")
    if any("full" in reason or "reached" in reason for _p, reason in rejected[-1:]):
        sys.exit(1)


if __name__ == "__main__":
    main()
