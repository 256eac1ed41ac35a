/* Albums: the list of albums, one album's page (rename, share, cover, delete, remove
   photos) and the "Add to album" chooser used by the photos page and the viewer.
   Removing from an album never deletes a photo; deleting an album asks first. */
(function () {
  "use strict";
  var Picup = window.Picup;
  if (!Picup) return;
  var api = Picup.api, text = Picup.text, el = Picup.el, showError = Picup.showError;

  /* ------------------------------------------------ the album chooser */
  var picker = document.getElementById("album-picker");

  /* Ask which album (or a new one); resolves with the album, or null when cancelled. */
  function chooseAlbum() {
    if (!picker) return Promise.resolve(null);
    var listNode = picker.querySelector(".picker-albums");
    var error = picker.querySelector(".error");
    var titleInput = picker.querySelector("#new-album-title");
    error.hidden = true;
    titleInput.value = "";
    listNode.textContent = "";
    return new Promise(function (resolve) {
      var settled = false;
      function done(album) {
        if (settled) return;
        settled = true;
        Picup.closeDialog(picker);
        resolve(album);
      }
      picker.onclose = function () { done(null); };
      picker.querySelector("[data-action=create]").onclick = function () {
        api("POST", "/api/v1/albums", { title: titleInput.value }).then(function (result) {
          done(result.data.album);
        }, function (e) { showError(error, e); });
      };
      api("GET", "/api/v1/albums").then(function (result) {
        result.data.albums.filter(function (album) { return album.role !== "view"; }).forEach(function (album) {
          var item = el("li");
          var button = el("button", "choice", album.title);
          button.type = "button";
          button.onclick = function () { done(album); };
          item.appendChild(button);
          listNode.appendChild(item);
        });
        var first = listNode.querySelector("button");
        (first || titleInput).focus();
      });
      picker.showModal();
    });
  }

  function addToAlbum(album, ids) {
    return api("POST", "/api/v1/albums/" + album.id + "/media", { media_ids: ids }).then(function () {
      Picup.notify(text("added_to_album", { count: ids.length, title: album.title }));
    }, function (error) { Picup.notify(error.message); });
  }

  Picup.chooseAlbum = chooseAlbum;
  Picup.addToAlbum = addToAlbum;

  /* The photos page: "Add to album" for the selected photos. With ?add_to=ID the
     page opened to choose photos for that album: select, then go back to it. */
  var timelineNode = document.getElementById("timeline");
  var addTo = timelineNode && timelineNode.dataset.addTo ? parseInt(timelineNode.dataset.addTo, 10) : null;
  Picup.selectionActions["add-to-album"] = function (timeline) {
    var ids = timeline.selectedIds();
    var target = addTo ? api("GET", "/api/v1/albums/" + addTo).then(function (r) { return r.data.album; })
                       : chooseAlbum();
    target.then(function (album) {
      if (!album) return;
      return addToAlbum(album, ids).then(function () {
        if (addTo) window.location.assign("/albums/" + album.id);
        else timeline.select(false);
      });
    });
  };
  if (addTo) {
    document.addEventListener("DOMContentLoaded", function () {
      setTimeout(function () { if (Picup.timeline) Picup.timeline.select(true); }, 0);
    });
  }

  /* -------------------------------------------------- the albums list */
  function albumsPage() {
    var listNode = document.getElementById("albums");
    var form = document.getElementById("new-album");
    var error = form.querySelector(".error");
    function show() {
      return api("GET", "/api/v1/albums").then(function (result) {
        listNode.textContent = "";
        document.getElementById("albums-empty").hidden = result.data.albums.length > 0;
        result.data.albums.forEach(function (album) {
          var item = el("li");
          var link = el("a", "album-card");
          link.href = "/albums/" + album.id;
          var cover = el("span", "cover");
          if (album.cover) {
            Picup.placeholder(cover, album.cover.placeholder);
            var img = el("img");
            img.src = album.cover.thumb;
            img.alt = "";
            img.loading = "lazy";
            cover.appendChild(img);
          }
          link.appendChild(cover);
          link.appendChild(el("span", "album-title", album.title));
          var about = text("n_items", { count: album.media_count });
          if (album.role !== "owner" && album.owner_name) about += " · " + text("shared_by", { name: album.owner_name });
          link.appendChild(el("span", "album-about", about));
          item.appendChild(link);
          listNode.appendChild(item);
        });
      });
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      api("POST", "/api/v1/albums", { title: form.elements.title.value }).then(function (result) {
        window.location.assign("/albums/" + result.data.album.id);
      }, function (e) { showError(error, e); });
    });
    Picup.ensureCsrf().then(show);
  }

  /* ------------------------------------------------------ one album */
  function albumPage(actions) {
    var id = parseInt(actions.dataset.album, 10);
    var base = "/api/v1/albums/" + id;

    function removeFromAlbum(ids) {
      return api("DELETE", base + "/media", { media_ids: ids }).then(function () {
        Picup.notify(text("removed_from_album", { count: ids.length }), function () {
          api("POST", base + "/media", { media_ids: ids }).then(Picup.refresh);
        });
        return Picup.refresh();
      }, function (error) { Picup.notify(error.message); });
    }
    Picup.selectionActions["remove-from-album"] = function (timeline) {
      var ids = timeline.selectedIds();
      timeline.select(false);
      removeFromAlbum(ids);
    };
    Picup.removeFromAlbum = removeFromAlbum;
    Picup.setCover = function (media) {
      return api("PATCH", base, { cover_id: media.id }).then(function () {
        Picup.notify(text("cover_set"));
      }, function (error) { Picup.notify(error.message); });
    };

    function dialog(idName, onSave) {
      var node = document.getElementById(idName);
      if (!node) return;
      var error = node.querySelector(".error");
      node.querySelector("form").addEventListener("submit", function (event) {
        var choice = event.submitter ? event.submitter.value : "save";
        if (choice === "cancel") return;
        event.preventDefault();
        if (error) error.hidden = true;
        onSave(node).then(function () { Picup.closeDialog(node); }, function (e) {
          if (error) showError(error, e);
        });
      });
      return node;
    }

    var rename = dialog("rename-dialog", function (node) {
      var title = node.querySelector("input").value;
      return api("PATCH", base, { title: title }).then(function (result) {
        document.getElementById("album-title").textContent = result.data.album.title;
        document.title = result.data.album.title + " · " + text("title");
      });
    });

    var share = dialog("share-dialog", function (node) {
      var members = [];
      Array.prototype.forEach.call(node.querySelectorAll("select"), function (select) {
        if (select.value) members.push({ user_id: parseInt(select.dataset.user, 10), role: select.value });
      });
      return api("PUT", base + "/members", { members: members }).then(function () {
        Picup.notify(text("sharing_saved"));
      });
    });

    function openShare() {
      var box = share.querySelector(".share-members");
      Array.prototype.slice.call(box.querySelectorAll(".member")).forEach(function (n) { n.remove(); });
      Promise.all([api("GET", "/api/v1/family"), api("GET", base)]).then(function (results) {
        var roles = {};
        (results[1].data.album.members || []).forEach(function (m) { roles[m.user_id] = m.role; });
        var me = parseInt(document.body.dataset.user, 10);
        var others = results[0].data.members.filter(function (m) { return m.id !== me; });
        if (!others.length) box.appendChild(el("p", "member", text("no_one_to_share_with")));
        others.forEach(function (member) {
          var row = el("div", "member row");
          var label = el("label", null, member.display_name);
          label.htmlFor = "share-" + member.id;
          var select = el("select");
          select.id = "share-" + member.id;
          select.dataset.user = String(member.id);
          [["", "share_none"], ["view", "share_view"], ["add", "share_add"]].forEach(function (option) {
            var node = el("option", null, text(option[1]));
            node.value = option[0];
            if ((roles[member.id] || "") === option[0]) node.selected = true;
            select.appendChild(node);
          });
          row.appendChild(label);
          row.appendChild(select);
          box.appendChild(row);
        });
        share.showModal();
      });
    }

    var remove = document.getElementById("delete-dialog");
    if (remove) {
      remove.addEventListener("close", function () {
        if (remove.returnValue !== "delete") return;
        api("DELETE", base).then(function () { window.location.assign("/albums"); },
                                 function (error) { Picup.notify(error.message); });
      });
    }

    actions.addEventListener("click", function (event) {
      var action = event.target.getAttribute("data-action");
      if (action === "rename") { rename.querySelector(".error").hidden = true; rename.showModal(); }
      else if (action === "share") openShare();
      else if (action === "delete-album") { remove.returnValue = ""; remove.showModal(); }
    });
  }

  if (document.getElementById("albums")) albumsPage();
  var actions = document.getElementById("album-actions");
  if (actions) albumPage(actions);
})();
