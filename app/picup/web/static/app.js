/* Picup core pages: setup, sign-in and a simple home. Talks to /api/v1 only. */
(function () {
  "use strict";
  var csrf = null;

  function api(method, path, body, headers) {
    var options = { method: method, credentials: "same-origin", headers: headers || {} };
    if (csrf) options.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined && !(body instanceof Blob)) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    } else if (body !== undefined) {
      options.body = body;
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 204) return { response: response, data: null };
      return response.text().then(function (text) {
        var data = text ? JSON.parse(text) : null;
        if (!response.ok) {
          var error = new Error(data && data.error ? data.error.message : response.statusText);
          error.status = response.status;
          throw error;
        }
        return { response: response, data: data };
      });
    });
  }

  function bindForm(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var fields = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name) return;
        fields[el.name] = el.type === "checkbox" ? el.checked : el.value;
      });
      if (form.dataset.lang) fields.language = form.dataset.lang;
      var message = form.querySelector(".error");
      message.hidden = true;
      api("POST", form.dataset.action, fields).then(function () {
        window.location.assign("/");
      }, function (error) {
        message.textContent = error.message;
        message.hidden = false;
      });
    });
  }

  /* ---------------------------------------------------------- tus upload */
  var CHUNK = 8 * 1024 * 1024;

  function b64(text) { return btoa(unescape(encodeURIComponent(text))); }

  function tusUpload(file) {
    var tus = { "Tus-Resumable": "1.0.0" };
    var meta = "filename " + b64(file.name) + ",lastModified " + b64(String(file.lastModified || ""));
    var create = Object.assign({ "Upload-Length": String(file.size), "Upload-Metadata": meta }, tus);
    return api("POST", "/api/v1/uploads", undefined, create).then(function (result) {
      var url = result.response.headers.get("Location");
      var tries = 0;
      function send(offset) {
        var headers = Object.assign({
          "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream"
        }, tus);
        return api("PATCH", url, file.slice(offset, offset + CHUNK), headers).then(function (r) {
          tries = 0;
          var next = parseInt(r.response.headers.get("Upload-Offset"), 10);
          if (next < file.size) return send(next);
          return { duplicate: r.response.headers.get("Picup-Duplicate") === "true" };
        }, function (error) {
          if (error.status && error.status < 500 && error.status !== 409) throw error;
          if (++tries > 8) throw error;
          return new Promise(function (resolve) { setTimeout(resolve, 1000 * tries); }).then(function () {
            return api("HEAD", url, undefined, Object.assign({}, tus)).then(function (r) {
              return send(parseInt(r.response.headers.get("Upload-Offset"), 10));
            });
          });
        });
      }
      return send(0);
    });
  }

  /* ---------------------------------------------------------------- home */
  function say(list, template, name, reason) {
    var item = document.createElement("li");
    item.textContent = template.replace("{name}", name).replace("{reason}", reason || "");
    list.appendChild(item);
    return item;
  }

  function showPage(grid, cursor, waiting) {
    var path = "/api/v1/media?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    return api("GET", path).then(function (result) {
      result.data.items.forEach(function (media) {
        if (media.render.status === "pending") waiting.count += 1;
        var tile = document.createElement("li");
        if (media.render.status === "ready") {
          var img = document.createElement("img");
          img.loading = "lazy";
          img.alt = media.filename;
          img.src = media.urls.thumb;  /* a small WebP, never the original */
          tile.appendChild(img);
        } else {
          tile.textContent = (media.kind === "video" ? "▶ " : "") + media.filename;
        }
        grid.appendChild(tile);
      });
      if (result.data.next_cursor) return showPage(grid, result.data.next_cursor, waiting);
    });
  }

  function home() {
    var grid = document.getElementById("grid");
    var status = document.getElementById("upload-status");
    var polls = 0;
    function refresh() {
      var waiting = { count: 0 };
      grid.textContent = "";
      return showPage(grid, null, waiting).then(function () {
        document.getElementById("empty").hidden = grid.children.length > 0;
        document.getElementById("count").textContent =
          grid.dataset.count.replace("{count}", grid.children.length);
        /* thumbnails still being made: look again shortly (for a minute at most) */
        if (waiting.count > 0 && polls < 30) {
          polls += 1;
          setTimeout(refresh, 2000);
        }
      });
    }
    api("GET", "/api/v1/session").then(function (result) {
      csrf = result.data.csrf_token;
      return refresh();
    });
    document.getElementById("add-files").addEventListener("change", function (event) {
      var files = Array.prototype.slice.call(event.target.files);
      event.target.value = "";
      files.reduce(function (previous, file) {
        return previous.then(function () {
          var line = say(status, status.dataset.adding, file.name);
          return tusUpload(file).then(function (outcome) {
            line.textContent = (outcome.duplicate ? status.dataset.already : status.dataset.added)
              .replace("{name}", file.name);
          }, function (error) {
            line.textContent = status.dataset.failed.replace("{name}", file.name)
              .replace("{reason}", error.message);
          });
        });
      }, Promise.resolve()).then(function () { polls = 0; return refresh(); });
    });
    document.getElementById("sign-out").addEventListener("click", function () {
      api("DELETE", "/api/v1/session").then(function () { window.location.assign("/signin"); });
    });
  }

  ["setup-form", "signin-form"].forEach(function (id) {
    var form = document.getElementById(id);
    if (form) bindForm(form);
  });
  if (document.getElementById("grid")) home();
})();
