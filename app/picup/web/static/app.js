/* Picup core pages: setup, sign-in and a simple home. Talks to /api/v1 only. */
(function () {
  "use strict";
  var csrf = null;
  var stringsNode = document.getElementById("strings");
  var strings = stringsNode ? JSON.parse(stringsNode.textContent) : {};

  function text(key, values) {
    var result = strings[key] || key;
    Object.keys(values || {}).forEach(function (name) { result = result.replace("{" + name + "}", values[name]); });
    return result;
  }

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

  function ensureCsrf() {
    if (csrf) return Promise.resolve(csrf);
    return api("GET", "/api/v1/session").then(function (result) { csrf = result.data.csrf_token; return csrf; });
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
  function say(list, message) {
    var item = document.createElement("li");
    item.textContent = message;
    list.appendChild(item);
    return item;
  }

  /* The moment a photo was taken, as the clock showed where it was taken. */
  function localTaken(media) {
    var moment = new Date(media.taken_at);
    if (media.taken_at_offset === null) return { date: moment, zone: undefined };
    return { date: new Date(moment.getTime() + media.taken_at_offset * 60000), zone: "UTC" };
  }

  function monthTitle(media, lang) {
    var taken = localTaken(media);
    return new Intl.DateTimeFormat(lang, { year: "numeric", month: "long", timeZone: taken.zone })
      .format(taken.date);
  }

  function duration(seconds) {
    var whole = Math.round(seconds || 0);
    var minutes = Math.floor(whole / 60), rest = whole % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function fillTile(tile, media) {
    tile.textContent = "";
    tile.setAttribute("aria-label", text("open_photo", { name: media.filename }));
    if (media.render.status === "ready") {
      var img = document.createElement("img");
      img.loading = "lazy";
      img.alt = media.filename;
      img.src = media.urls.thumb;  /* a small WebP, never the original */
      if (media.placeholder && window.PicupThumbHash) {
        var blur = window.PicupThumbHash.toDataURL(media.placeholder);
        if (blur) tile.style.backgroundImage = "url(" + blur + ")";
      }
      tile.appendChild(img);
    } else {
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = media.filename;
      tile.appendChild(name);
    }
    if (media.kind === "video") {
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "▶ " + duration(media.duration);
      tile.appendChild(badge);
    }
  }

  /* Thumbnails still being made: look again every 2 s, for a minute at most. */
  function watch(tile, media, tries) {
    if (media.render.status !== "pending" || tries > 30) return;
    setTimeout(function () {
      api("GET", "/api/v1/media/" + media.id).then(function (result) {
        fillTile(tile, result.data.media);
        watch(tile, result.data.media, tries + 1);
      });
    }, 2000);
  }

  function Timeline(root, lang) {
    this.root = root;
    this.lang = lang;
    this.reset();
  }

  Timeline.prototype.reset = function () {
    this.root.textContent = "";
    this.cursor = null;
    this.done = false;
    this.loading = null;
    this.month = null;
    this.grid = null;
    this.count = 0;
    this.items = [];
  };

  Timeline.prototype.more = function () {
    var self = this;
    if (self.done) return Promise.resolve();
    if (self.loading) return self.loading;
    var path = "/api/v1/media?limit=100" + (self.cursor ? "&cursor=" + encodeURIComponent(self.cursor) : "");
    self.loading = api("GET", path).then(function (result) {
      result.data.items.forEach(function (media) {
        var title = monthTitle(media, self.lang);
        if (title !== self.month) {
          var heading = document.createElement("h2");
          heading.textContent = title;
          self.grid = document.createElement("ul");
          self.grid.className = "grid";
          self.root.appendChild(heading);
          self.root.appendChild(self.grid);
          self.month = title;
        }
        var item = document.createElement("li");
        var tile = document.createElement("button");
        tile.type = "button";
        tile.className = "tile";
        tile.dataset.index = String(self.items.length);
        self.items.push(media);
        fillTile(tile, media);
        item.appendChild(tile);
        self.grid.appendChild(item);
        self.count += 1;
        watch(tile, media, 0);
      });
      self.cursor = result.data.next_cursor;
      self.done = !self.cursor;
      self.loading = null;
    }, function (error) {
      self.loading = null;
      throw error;
    });
    return self.loading;
  };

  function home() {
    var root = document.getElementById("timeline");
    var status = document.getElementById("upload-status");
    var timeline = new Timeline(root, document.documentElement.lang);
    var sentinel = document.getElementById("more");
    root.addEventListener("click", function (event) {
      var tile = event.target.closest ? event.target.closest(".tile") : null;
      if (tile && window.PicupViewer) window.PicupViewer.open(timeline, parseInt(tile.dataset.index, 10));
    });
    function fill() {
      /* keep loading while the end of the list is on screen */
      return timeline.more().then(function () {
        document.getElementById("empty").hidden = timeline.count > 0;
        var rect = sentinel.getBoundingClientRect();
        if (!timeline.done && rect.top < window.innerHeight * 2) return fill();
      });
    }
    if (window.IntersectionObserver) {
      new IntersectionObserver(function (entries) {
        if (entries[0].isIntersecting) fill();
      }, { rootMargin: "800px" }).observe(sentinel);
    } else {
      window.addEventListener("scroll", fill);
    }
    ensureCsrf().then(fill);
    Picup.refresh = function () { timeline.reset(); return fill(); };
    document.getElementById("add-files").addEventListener("change", function (event) {
      var files = Array.prototype.slice.call(event.target.files);
      event.target.value = "";
      files.reduce(function (previous, file) {
        return previous.then(function () {
          var line = say(status, text("adding", { name: file.name }));
          return tusUpload(file).then(function (outcome) {
            line.textContent = text(outcome.duplicate ? "already_there" : "added", { name: file.name });
          }, function (error) {
            line.textContent = text("not_added", { name: file.name, reason: error.message });
          });
        });
      }, Promise.resolve()).then(function () { timeline.reset(); return fill(); });
    });
  }

  /* ---------------------------------------------------------------- trash */
  function trashPage() {
    var list = document.getElementById("trash");
    var notice = document.getElementById("notice");
    var lang = document.documentElement.lang;
    function show() {
      return api("GET", "/api/v1/trash").then(function (result) {
        list.textContent = "";
        document.getElementById("trash-empty").hidden = result.data.items.length > 0;
        result.data.items.forEach(function (media) {
          var item = document.createElement("li");
          var picture = document.createElement("div");
          picture.className = "tile";
          fillTile(picture, media);
          var words = document.createElement("p");
          var gone = new Intl.DateTimeFormat(lang, { dateStyle: "long" }).format(new Date(media.purge_at));
          words.textContent = media.filename + " · " + text("gone_on", { date: gone });
          var restore = document.createElement("button");
          restore.type = "button";
          restore.textContent = text("restore");
          restore.addEventListener("click", function () {
            api("POST", "/api/v1/media/" + media.id + "/restore").then(function () {
              notice.textContent = text("restored", { name: media.filename });
              return show();
            });
          });
          item.appendChild(picture);
          item.appendChild(words);
          item.appendChild(restore);
          list.appendChild(item);
        });
      });
    }
    ensureCsrf().then(show);
  }

  var Picup = window.Picup = { api: api, text: text, fillTile: fillTile, ensureCsrf: ensureCsrf,
                               localTaken: localTaken };

  ["setup-form", "signin-form"].forEach(function (id) {
    var form = document.getElementById(id);
    if (form) bindForm(form);
  });
  var signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", function () {
      ensureCsrf().then(function () { return api("DELETE", "/api/v1/session"); })
        .then(function () { window.location.assign("/signin"); });
    });
  }
  if (document.getElementById("timeline")) home();
  if (document.getElementById("trash")) trashPage();
})();
