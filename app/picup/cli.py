"""The ``picup`` command."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import sys
from pathlib import Path

import click

from . import config, db, logs, memory, migrations, snapshots, storage


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
    migrations.migrate(settings.database_path, keep_snapshots=settings.keep_migration_snapshots)
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
    memory.limit_malloc_arenas()


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
@click.option("--rollback", is_flag=True, help="Put back the database as it was before the last upgrade.")
@click.option("--list", "list_snapshots", is_flag=True, help="List the snapshots taken before upgrades.")
@click.option("--snapshot", "snapshot_name", default=None, help="With --rollback: this snapshot, not the newest.")
@click.option("--yes", is_flag=True, help="With --rollback: do not ask.")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def migrate(rollback, list_snapshots, snapshot_name, yes, data_dir):
    """Bring the database schema up to date (a snapshot is kept first), or roll it back."""
    settings = _settings(data_dir=data_dir)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    if list_snapshots or rollback:
        _rollback(settings, list_snapshots, snapshot_name, yes)
        return
    try:
        before, after = migrations.migrate(settings.database_path, keep_snapshots=settings.keep_migration_snapshots)
    except migrations.MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    if before == after:
        click.echo(f"The database is up to date (schema version {after}).")
    else:
        click.echo(f"The database was upgraded from schema version {before} to {after}.")


def _rollback(settings, list_only: bool, name: str | None, yes: bool) -> None:
    found = snapshots.listed(settings.database_path)
    if list_only:
        if not found:
            click.echo("No snapshots: none of the upgrades so far needed one.")
        for path in found:
            click.echo(f"{path.name}  (schema version {snapshots.verify(path)}, {path.stat().st_size:,} bytes)")
        return
    if name:
        found = [p for p in found if p.name == name]
        if not found:
            raise click.ClickException(f"there is no snapshot called {name} (see `picup migrate --list`)")
    if not found:
        raise click.ClickException("there is no snapshot to roll back to")
    chosen = found[0]
    version = snapshots.verify(chosen)
    click.echo(f"This puts the database back as it was in {chosen.name} (schema version {version}).")
    click.echo("Anything added since then (photos' details, albums, accounts) is no longer in the database;")
    click.echo("the current database is kept as a snapshot first. Stop Picup's web and worker before this.")
    if not yes:
        click.confirm("Roll back?", abort=True)
    keep = snapshots.folder_for(settings.database_path) / f"before-rollback-{snapshots.stamp()}{snapshots.SUFFIX}"
    if Path(settings.database_path).exists():
        snapshots.take(settings.database_path, keep)
    try:
        snapshots.restore_into(chosen, settings.database_path)
    except snapshots.SnapshotError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Rolled back to schema version {version}. The database before the rollback is in {keep}.")
    click.echo("Now install the Picup version that matches it, and start it.")


@main.command("check")
@click.option("--all", "check_all", is_flag=True, help="Read every original now, not only tonight's share.")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def check_command(check_all, data_dir):
    """Read originals back and compare them with the database; repair what the backup can.

    Exits 1 when something is left that needs a person."""
    from . import integrity, jobs

    settings = _settings(data_dir=data_dir)
    store = _prepare(settings)
    with db.connection(), _progress("Checking", check_all or sys.stdout.isatty()) as advance:
        try:
            run = integrity.run(settings, store, all=check_all, progress=advance)
        except jobs.JobBusy:
            raise click.ClickException("another integrity check is running; try again when it has finished") from None
    click.echo(integrity.summary(run))
    if run.status == "failed" or integrity.unrepaired(run):
        sys.exit(1)


@main.command("backup")
@click.option("--new-key", is_flag=True, help="Print a new encryption key for backup.encryption_key and stop.")
@click.option("--list", "list_snapshots", is_flag=True, help="List the database snapshots in the backup.")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def backup_command(new_key, list_snapshots, data_dir):
    """Send what is new to the off-site backup now (the worker also does it every night)."""
    from . import backup, encryption, jobs, restore

    if new_key:
        click.echo(encryption.new_key())
        click.echo("Put it in backup.encryption_key (or PICUP_BACKUP_ENCRYPTION_KEY), and keep a copy somewhere "
                   "safe that is not this box: without it the backup cannot be read.", err=True)
        return
    settings = _settings(data_dir=data_dir)
    if list_snapshots:
        try:
            names = restore.snapshots_available(settings)
        except (restore.RestoreError, backup.BackupError) as exc:
            raise click.ClickException(str(exc)) from None
        for name in names:
            click.echo(name)
        return
    store = _prepare(settings)
    with db.connection(), _progress("Backing up", sys.stdout.isatty()) as advance:
        try:
            run = backup.run(settings, store, progress=advance)
        except (backup.BackupError, jobs.JobBusy) as exc:
            raise click.ClickException(f"the backup did not finish: {exc}") from None
    figures = json.loads(run.detail)
    click.echo(
        f"Backup done: {figures['objects_sent']:,} new objects ({_size(figures['bytes_sent'])}) sent; "
        f"{figures['objects_total']:,} originals ({_size(figures['bytes_total'])}) are in the backup; "
        f"snapshot {figures['snapshot']}."
    )
    if figures.get("originals_not_sent"):
        click.echo(f"{len(figures['originals_not_sent']):,} originals were left out: they are damaged on this "
                   "box (their bytes no longer match their checksum). `picup check` reports them.", err=True)


@main.command("restore")
@click.option("--snapshot", "snapshot_name", default=None, help="This database snapshot, not the newest.")
@click.option("--data", "data_dir", default=None, help="Data folder (PICUP_DATA_DIR).")
def restore_command(snapshot_name, data_dir):
    """Bring a library back from the backup onto an empty machine."""
    from . import backup, restore

    settings = _settings(data_dir=data_dir)
    with _progress("Fetching originals", sys.stdout.isatty()) as advance:
        try:
            result = restore.restore(settings, snapshot=snapshot_name, progress=advance)
        except (restore.RestoreError, backup.BackupError, snapshots.SnapshotError) as exc:
            raise click.ClickException(f"the restore did not finish: {exc}") from None
    click.echo(f"Restored snapshot {result.snapshot}: {result.originals:,} originals fetched "
               f"({_size(result.bytes)}), every one checked against its SHA-256.")
    if result.already_there:
        click.echo(f"{result.already_there:,} originals were already in the photo store.")
    if result.missing:
        click.echo(f"{len(result.missing)} originals could not be brought back (not in the backup or damaged):",
                   err=True)
        for sha256 in result.missing[:50]:
            click.echo(f"  {sha256}", err=True)
        sys.exit(1)
    click.echo("Start Picup: the worker makes the thumbnails again in the background.")


@contextlib.contextmanager
def _progress(label: str, show: bool):
    """A progress bar over bytes when on a terminal; the callback takes (done, total)."""
    if not show:
        yield None
        return
    with click.progressbar(length=1, label=label, show_pos=False, show_percent=True) as bar:
        def advance(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        yield advance


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)


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
    from . import folder_scan, library, takeout
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
    files, skipped = folder_scan.scan(folder)
    google = takeout.TakeoutDates()
    added, duplicates, rejected = 0, 0, []
    with click.progressbar(files, label="Importing", show_pos=True, file=sys.stderr,
                           item_show_func=lambda p: p.name if p else "") as bar:
        for path in bar:
            try:
                if sniff_file(path) is None:
                    raise PicupError("unsupported_type", name=path.name)
                live_id = google.live_id(path)
                with db.connection():
                    if library.already_have(owner, _sha256(path), album, live_id=live_id):
                        duplicates += 1
                        continue
                    with open(path, "rb") as fh:
                        received = library.receive(fh, settings.tmp_path, limit=settings.max_upload_size,
                                                   name=path.name)
                    modified = (last_modified_from(str(google.taken_ms(path) or ""))
                                or last_modified_from(str(int(path.stat().st_mtime * 1000))))
                    result = library.ingest(store, received, owner=owner, filename=path.name, album=album,
                                            last_modified=modified, live_id=live_id)
                duplicates += result.duplicate
                added += not result.duplicate
            except PicupError as exc:
                rejected.append((path, translate(f"errors.{exc.code}", "en", **exc.params)))
                if exc.code in ("storage_full", "storage_unavailable"):
                    break
            except OSError as exc:
                rejected.append((path, exc.strerror or str(exc)))
    click.echo(f"Added {added}, already there {duplicates}, could not be added {len(rejected)}.")
    if skipped:
        which = "file that only goes" if skipped == 1 else "files that only go"
        click.echo(f"Left out {skipped} {which} with a photo or video (edits, details, camera previews) "
                   "or with the system.")
    for path, reason in rejected[:50]:
        click.echo(f"  {path.relative_to(folder)}: {reason}")
    if len(rejected) > 50:
        click.echo(f"  … and {len(rejected) - 50} more")
    if any("full" in reason or "reached" in reason for _p, reason in rejected[-1:]):
        sys.exit(1)


if __name__ == "__main__":
    main()
