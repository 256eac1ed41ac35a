"""Picup: a family photo and video album for a home server."""

from __future__ import annotations

import logging

from flask import Flask

from . import config as config_module
from . import db, migrations, storage, uploads
from .library import claim_store
from .throttle import Throttle

__version__ = "0.1.0"
log = logging.getLogger(__name__)


class Picup:
    """What the app shares across requests: settings, the blob store and the guessing limits."""

    def __init__(self, settings: config_module.Settings, store: storage.BlobStore):
        self.settings = settings
        self.store = store
        # failed sign-ins (password or two-step code): per account, and per client address
        self.signin_per_account = Throttle(limit=10, window=15 * 60)
        self.signin_per_address = Throttle(limit=30, window=15 * 60)
        # TV short codes: every try counts, per client address
        self.tv_pairing = Throttle(limit=10, window=10 * 60)


def prepare(settings: config_module.Settings) -> storage.BlobStore:
    """Folders, secret, schema and store marker: everything a process needs before work."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    settings.tmp_path.mkdir(parents=True, exist_ok=True)
    settings.ensure_secret_key()
    migrations.migrate(settings.database_path, keep_snapshots=settings.keep_migration_snapshots)
    db.open_database(settings.database_path)
    store = storage.open_store(settings)
    with db.connection():
        claim_store(store)
        uploads.clean_after_crash(settings, store)
    return store


def create_app(settings: config_module.Settings | None = None) -> Flask:
    """Build the web app. Refuses to start when the photo store's marker is missing."""
    settings = settings or config_module.load()
    store = prepare(settings)
    app = Flask(__name__, static_folder="web/static", template_folder="web/templates")
    app.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False, MAX_FORM_MEMORY_SIZE=64 * 1024)
    app.extensions["picup"] = Picup(settings, store)

    from . import web

    web.init_app(app)
    return app
