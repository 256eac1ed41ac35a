"""The whole library on an S3 store (moto's server over real HTTP), as an installer with a NAS bucket runs it."""

import datetime as dt
import secrets

import pytest
from minio import Minio

from picup import config, create_app, db, storage, worker
from picup.models import Media, utcnow
from tests import media_files
from tests.conftest import Api
from tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY


@pytest.fixture
def s3_settings(endpoint, tmp_path):
    bucket = f"family-{secrets.token_hex(4)}"
    Minio(endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
          region=REGION).make_bucket(bucket_name=bucket)
    env = {"PICUP_STORAGE_BACKEND": "s3", "PICUP_STORAGE_ENDPOINT": endpoint, "PICUP_STORAGE_BUCKET": bucket,
           "PICUP_STORAGE_PREFIX": "picup/", "PICUP_STORAGE_ACCESS_KEY": ACCESS_KEY,
           "PICUP_STORAGE_SECRET_KEY": SECRET_KEY, "PICUP_STORAGE_SECURE": "false",
           "PICUP_STORAGE_REGION": REGION}
    return config.load({"data_dir": str(tmp_path / "data")}, environ=env)


def test_upload_view_seek_trash_and_purge_on_s3(s3_settings, caplog):
    app = create_app(s3_settings)
    store = app.extensions["picup"].store
    mom = Api(app)
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    content = media_files.noisy_jpeg(3)
    media = mom.upload(content, "s3.jpg").json["media"]
    key = storage.blob_key(media["sha256"])
    assert store.exists(key)
    assert mom.get(media["urls"]["original"]).data == content
    part = mom.get(media["urls"]["original"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == content[10:20]
    assert mom.get("/readyz").json["checks"]["store"] == "ok"

    mom.delete(f"/api/v1/media/{media['id']}")
    with db.connection():
        Media.update(trashed_at=utcnow() - dt.timedelta(days=31)).execute()
    assert worker.purge_trash(store, s3_settings) == 1
    assert not store.exists(key)
    assert SECRET_KEY not in caplog.text


def test_a_bucket_without_the_marker_is_refused(s3_settings, endpoint):
    create_app(s3_settings)  # first start writes the marker
    admin = Minio(endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)
    admin.remove_object(bucket_name=s3_settings.storage_bucket, object_name="picup/" + storage.MARKER_NAME)
    with pytest.raises(storage.StoreUnavailable, match="marker"):
        create_app(s3_settings)
