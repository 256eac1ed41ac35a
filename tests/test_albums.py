"""Albums: make, rename, cover, add and remove photos, share with the family."""

import pytest

from picup import worker
from tests import media_files


@pytest.fixture
def photos(mom):
    return [mom.upload(media_files.jpeg((i * 40, 10, 10), taken=f"2023:0{i + 1}:01 10:00:00"),
                       f"{i}.jpg").json["media"]["id"] for i in range(4)]


def album(api, title="Jeju 2023"):
    response = api.post("/api/v1/albums", json={"title": title})
    assert response.status_code == 201, response.json
    return response.json["album"]


def test_make_an_album_and_fill_it(mom, photos):
    trip = album(mom)
    added = mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:3]})
    assert added.status_code == 200 and added.json["added"] == 3
    details = mom.get(f"/api/v1/albums/{trip['id']}").json["album"]
    assert details["media_count"] == 3 and details["cover_id"] == photos[0]
    items = mom.get(f"/api/v1/media?album={trip['id']}").json["items"]
    assert [m["id"] for m in items] == [photos[2], photos[1], photos[0]]  # newest taken first
    # adding again is harmless
    assert mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:1]}).status_code == 200
    assert mom.get(f"/api/v1/albums/{trip['id']}").json["album"]["media_count"] == 3


def test_rename_and_choose_the_cover(mom, photos):
    trip = album(mom)
    mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:2]})
    renamed = mom.patch(f"/api/v1/albums/{trip['id']}", json={"title": "제주도 여행", "cover_id": photos[1]})
    assert renamed.json["album"]["title"] == "제주도 여행" and renamed.json["album"]["cover_id"] == photos[1]
    outside = mom.patch(f"/api/v1/albums/{trip['id']}", json={"cover_id": photos[3]})
    assert outside.status_code == 400
    blank = mom.patch(f"/api/v1/albums/{trip['id']}", json={"title": "   "})
    assert blank.status_code == 400 and blank.json["error"]["code"] == "missing_field"


def test_removing_from_an_album_or_deleting_it_keeps_the_photos(mom, photos):
    trip = album(mom)
    mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos})
    removed = mom.delete(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": [photos[0]]})
    assert removed.json["removed"] == 1 and removed.json["album"]["cover_id"] != photos[0]
    assert mom.delete(f"/api/v1/albums/{trip['id']}").status_code == 204
    assert mom.get(f"/api/v1/albums/{trip['id']}").status_code == 404
    assert len(mom.get("/api/v1/media").json["items"]) == 4
    for media_id in photos:
        assert mom.get(f"/api/v1/media/{media_id}/original").status_code == 200


def test_only_your_own_photos_go_into_your_album(family, photos):
    dad = family.member("dad")
    his = dad.upload(media_files.jpeg("black")).json["media"]["id"]
    trip = album(family.admin)
    response = family.admin.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": [his]})
    assert response.status_code == 404
    bad = family.admin.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": "all"})
    assert bad.status_code == 400


def test_share_an_album_to_view(family, photos):
    mom = family.admin
    dad, kid = family.member("dad"), family.member("kid")
    trip = album(mom)
    mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:2]})
    shared = mom.put(f"/api/v1/albums/{trip['id']}/members",
                     json={"members": [{"user_id": dad.user["id"], "role": "view"}]})
    assert shared.json["album"]["members"] == [{"user_id": dad.user["id"], "role": "view"}]
    albums = dad.get("/api/v1/albums").json["albums"]
    assert [(a["title"], a["role"]) for a in albums] == [("Jeju 2023", "view")]
    items = dad.get(f"/api/v1/media?album={trip['id']}").json["items"]
    assert len(items) == 2
    assert dad.get(items[0]["urls"]["original"]).status_code == 200
    # what is not in the album stays private
    assert dad.get(f"/api/v1/media/{photos[3]}/original").status_code == 404
    # viewers cannot change the album
    assert dad.patch(f"/api/v1/albums/{trip['id']}", json={"title": "mine"}).status_code == 403
    assert dad.delete(f"/api/v1/albums/{trip['id']}").status_code == 403
    assert dad.put(f"/api/v1/albums/{trip['id']}/members", json={"members": []}).status_code == 403
    assert dad.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:1]}).status_code == 403
    # someone it was not shared with sees nothing, not even that it exists
    assert kid.get(f"/api/v1/albums/{trip['id']}").status_code == 404
    assert kid.get(f"/api/v1/media?album={trip['id']}").status_code == 404


def test_share_an_album_to_add(family, photos):
    mom = family.admin
    dad = family.member("dad")
    trip = album(mom)
    mom.put(f"/api/v1/albums/{trip['id']}/members", json={"members": [{"user_id": dad.user["id"], "role": "add"}]})
    his = dad.upload(media_files.jpeg("black"), "dad.jpg", album=trip["id"]).json["media"]["id"]
    other = dad.upload(media_files.jpeg("gray")).json["media"]["id"]
    assert dad.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": [other]}).status_code == 200
    # mom sees what dad added, through the album
    assert mom.get(f"/api/v1/media/{his}/original").status_code == 200
    mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": [photos[0]]})
    # dad may take back his own, not mom's
    assert dad.delete(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": [photos[0]]}).json["removed"] == 0
    assert dad.delete(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": [his]}).json["removed"] == 1
    # un-sharing takes it away again
    mom.put(f"/api/v1/albums/{trip['id']}/members", json={"members": []})
    assert dad.get(f"/api/v1/albums/{trip['id']}").status_code == 404
    assert dad.get(f"/api/v1/media/{photos[0]}/original").status_code == 404


def test_sharing_with_a_stranger_or_a_bad_role_is_refused(family):
    trip = album(family.admin)
    for members in ([{"user_id": 999, "role": "view"}], [{"user_id": 1, "role": "view"}],
                    [{"user_id": 2, "role": "owner"}], "everyone"):
        response = family.admin.put(f"/api/v1/albums/{trip['id']}/members", json={"members": members})
        assert response.status_code == 400, members


def test_trashed_photos_vanish_from_shared_albums(family, photos):
    mom, dad = family.admin, family.member("dad")
    trip = album(mom)
    mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:2]})
    mom.put(f"/api/v1/albums/{trip['id']}/members", json={"members": [{"user_id": dad.user["id"]}]})
    mom.delete(f"/api/v1/media/{photos[0]}")
    assert [m["id"] for m in dad.get(f"/api/v1/media?album={trip['id']}").json["items"]] == [photos[1]]
    assert dad.get(f"/api/v1/media/{photos[0]}/original").status_code == 404
    assert mom.get(f"/api/v1/albums/{trip['id']}").json["album"]["media_count"] == 1


def test_albums_show_their_owner_and_cover_picture(family, photos, pipeline):
    mom, dad = family.admin, family.member("dad", display_name="Dad")
    trip = album(mom)
    empty = album(mom, "Nothing yet")
    mom.post(f"/api/v1/albums/{trip['id']}/media", json={"media_ids": photos[:2]})
    for a in (trip, empty):
        mom.put(f"/api/v1/albums/{a['id']}/members", json={"members": [{"user_id": dad.user["id"]}]})

    def listed(api):
        return {a["title"]: a for a in api.get("/api/v1/albums").json["albums"]}

    # the cover photo is chosen but not rendered yet: nothing to paint
    assert listed(mom)["Jeju 2023"]["cover_id"] == photos[0] and listed(mom)["Jeju 2023"]["cover"] is None
    assert worker.drain_tasks() > 0
    cover_photo = mom.get(f"/api/v1/media/{photos[0]}").json["media"]
    assert cover_photo["render"]["status"] == "ready" and cover_photo["placeholder"]
    for api in (mom, dad):
        albums = listed(api)
        assert albums["Jeju 2023"]["owner_name"] == "Mom" and albums["Nothing yet"]["owner_name"] == "Mom"
        assert albums["Jeju 2023"]["cover"] == {"thumb": f"/api/v1/media/{photos[0]}/thumb",
                                                "placeholder": cover_photo["placeholder"]}
        assert albums["Nothing yet"]["cover"] is None
        thumb = api.get(albums["Jeju 2023"]["cover"]["thumb"])  # someone it is shared with can load it
        assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    one = dad.get(f"/api/v1/albums/{trip['id']}").json["album"]
    assert one["owner_name"] == "Mom" and one["cover"]["thumb"] == f"/api/v1/media/{photos[0]}/thumb"

    # a cover in the trash is not shown, and comes back with the photo
    mom.delete(f"/api/v1/media/{photos[0]}")
    assert listed(mom)["Jeju 2023"]["cover"] is None and listed(dad)["Jeju 2023"]["cover"] is None
    assert mom.get(f"/api/v1/albums/{trip['id']}").json["album"]["cover"] is None
    mom.post(f"/api/v1/media/{photos[0]}/restore")
    assert listed(dad)["Jeju 2023"]["cover"]["thumb"] == f"/api/v1/media/{photos[0]}/thumb"
    # choosing another cover shows that one
    chosen = mom.patch(f"/api/v1/albums/{trip['id']}", json={"cover_id": photos[1]}).json["album"]
    assert chosen["cover"]["thumb"] == f"/api/v1/media/{photos[1]}/thumb"
    # renamed owners show under their new name
    mom.patch("/api/v1/me", json={"display_name": "Mother"})
    assert listed(dad)["Jeju 2023"]["owner_name"] == "Mother"


# Found by the scanner run (docs/security.md, "Scanner run"): each of these was a 500.
TOO_BIG = 2**63  # one past SQLite's largest integer


def test_ids_too_big_for_the_database_are_not_found_or_refused(mom, photos):
    trip = album(mom)
    for method, path in [("GET", f"/api/v1/albums/{TOO_BIG}"), ("DELETE", f"/api/v1/albums/{TOO_BIG}"),
                         ("PUT", f"/api/v1/albums/{TOO_BIG}/members"), ("POST", f"/api/v1/albums/{TOO_BIG}/media")]:
        response = mom.request(method, path, json={"members": [], "media_ids": photos})
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found", path
    for method, path, body, field in [
        ("POST", "media", {"media_ids": [photos[0], TOO_BIG]}, "media_ids"),
        ("DELETE", "media", {"media_ids": [-TOO_BIG - 1]}, "media_ids"),
        ("PUT", "members", {"members": [{"user_id": TOO_BIG}]}, "members"),
        ("PATCH", "", {"cover_id": TOO_BIG}, "cover_id"),
    ]:
        response = mom.request(method, f"/api/v1/albums/{trip['id']}/{path}".rstrip("/"), json=body)
        assert response.status_code == 400, response.json
        assert response.json["error"] == {"code": "invalid_value", "message": f'The value of "{field}" is not valid.'}
    after = mom.get(f"/api/v1/albums/{trip['id']}").json["album"]
    assert after["media_count"] == 0 and after["members"] == [] and after["cover_id"] is None, "nothing changed"
