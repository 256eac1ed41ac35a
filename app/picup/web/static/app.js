/* Picup core pages: setup, sign-in and a simple home. Talks to /api/v1 only. */
(function () {
  "use strict";
  var csrf = null;
  var stringsNode = document.getElementById("strings");
  var strings = stringsNode ? JSON.parse(stringsNode.textContent) : {};

  var numbers = window.Intl ? new Intl.NumberFormat(document.documentElement.lang) : null;

  /* A text of the page's language; ``{count}`` of 1 picks the ``_one`` wording where there is one. */
  function text(key, values) {
    values = values || {};
    var result = (values.count === 1 && strings[key + "_one"]) || strings[key] || key;
    Object.keys(values).forEach(function (name) {
      var value = typeof values[name] === "number" && numbers ? numbers.format(values[name]) : values[name];
      result = result.split("{" + name + "}").join(value);
    });
    return result;
  }

  function api(method, path, body, headers) {
    if (!csrf && method !== "GET" && path !== "/api/v1/session" && path !== "/api/v1/setup") {
      return ensureCsrf().then(function () { return api(method, path, body, headers); });
    }
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
          error.code = data && data.error ? data.error.code : null;
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
        window.location.assign(form.dataset.next || "/");
      }, function (error) {
        message.textContent = error.message;
        message.hidden = false;
        var otp = form.querySelector(".otp");
        if (otp && (error.code === "otp_required" || error.code === "wrong_code")) {
          otp.hidden = false;  /* two-step sign-in: the code from the phone, then sign in again */
          form.elements.otp.focus();
        }
      });
    });
  }

  /* ------------------------------------------------------------ timeline */
  /* The moment a photo was taken, as the clock showed where it was taken. */
  function localTaken(media) {
    var moment = new Date(media.taken_at);
    if (media.taken_at_offset === null) return { date: moment, zone: undefined };
    return { date: new Date(moment.getTime() + media.taken_at_offset * 60000), zone: "UTC" };
  }

  var monthFormats = {};
  function monthTitle(media, lang) {
    var taken = localTaken(media);
    var key = lang + "/" + (taken.zone || "");
    if (!monthFormats[key]) {  /* making a formatter is slow; one per language and zone */
      monthFormats[key] = new Intl.DateTimeFormat(lang, { year: "numeric", month: "long", timeZone: taken.zone });
    }
    return monthFormats[key].format(taken.date);
  }

  /* Thumbnails are fetched when their tile comes near the screen (closer than the
     browser's own lazy loading would wait), so the first screen gets the network first. */
  var nearScreen = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      var img = entry.target;
      nearScreen.unobserve(img);
      if (img.picupPlaceholder) placeholder(img.parentNode, img.picupPlaceholder);
      img.src = img.getAttribute("data-src");
    });
  }, { rootMargin: "300px 0px" }) : null;

  /* ``hash``: the blurred preview, decoded only for tiles near the screen too. */
  function lazyImage(img, url, hash) {
    if (nearScreen) {
      img.setAttribute("data-src", url);
      img.picupPlaceholder = hash;
      nearScreen.observe(img);
    } else {
      if (hash) placeholder(img.parentNode, hash);
      img.loading = "lazy";
      img.src = url;
    }
  }

  function duration(seconds) {
    var whole = Math.round(seconds || 0);
    var minutes = Math.floor(whole / 60), rest = whole % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function placeholder(node, hash) {
    if (hash && window.PicupThumbHash) {
      var blur = window.PicupThumbHash.toDataURL(hash);
      if (blur) node.style.backgroundImage = "url(" + blur + ")";
    }
  }

  function fillTile(tile, media) {
    tile.textContent = "";
    tile.setAttribute("aria-label", text(media.kind === "video" ? "open_video" : "open_photo", { name: media.filename }));
    if (media.render.status === "ready") {
      var img = document.createElement("img");
      img.alt = media.filename;
      tile.appendChild(img);
      lazyImage(img, media.urls.thumb, media.placeholder);  /* a small WebP, never the original */
    } else {
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = media.filename;
      tile.appendChild(name);
    }
    if (media.kind === "video" || media.live) {
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = media.live ? text("live_badge") : text("video_badge", { duration: duration(media.duration) });
      tile.appendChild(badge);
    }
    var tick = document.createElement("span");
    tick.className = "tick";
    tick.setAttribute("aria-hidden", "true");
    tile.appendChild(tick);
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

  /* A grid of photos under month headings, loaded a page at a time by cursor.
     ``album``: only that album's photos. In selection mode a tap selects instead of opening. */
  function Timeline(root, lang, album) {
    this.root = root;
    this.lang = lang;
    this.album = album || null;
    this.selecting = false;
    this.selected = {};
    this.onselect = null;
    this.reset();
  }

  Timeline.prototype.reset = function () {
    this.root.textContent = "";
    this.cursor = null;
    this.done = false;
    this.loading = null;
    this.generation = (this.generation || 0) + 1;
    this.month = null;
    this.grid = null;
    this.count = 0;
    this.items = [];
  };

  Timeline.prototype.more = function () {
    var self = this;
    if (self.done) return Promise.resolve();
    if (self.loading) return self.loading;
    var generation = self.generation;
    var path = "/api/v1/media?limit=100" + (self.album ? "&album=" + self.album : "") +
      (self.cursor ? "&cursor=" + encodeURIComponent(self.cursor) : "");
    self.loading = api("GET", path).then(function (result) {
      if (generation !== self.generation) return;  /* reset while this page was on its way */
      result.data.items.forEach(function (media) { self.add(media); });
      self.cursor = result.data.next_cursor;
      self.done = !self.cursor;
      self.loading = null;
    }, function (error) {
      self.loading = null;
      throw error;
    });
    return self.loading;
  };

  Timeline.prototype.add = function (media) {
    var title = monthTitle(media, this.lang);
    if (title !== this.month) {
      var heading = document.createElement("h2");
      heading.textContent = title;
      this.grid = document.createElement("ul");
      this.grid.className = "grid";
      this.root.appendChild(heading);
      this.root.appendChild(this.grid);
      this.month = title;
    }
    var item = document.createElement("li");
    var tile = document.createElement("button");
    tile.type = "button";
    tile.className = "tile";
    tile.dataset.index = String(this.items.length);
    if (this.selecting) tile.setAttribute("aria-pressed", this.selected[media.id] ? "true" : "false");
    this.items.push(media);
    fillTile(tile, media);
    item.appendChild(tile);
    this.grid.appendChild(item);
    this.count += 1;
    watch(tile, media, 0);
  };

  Timeline.prototype.select = function (on) {
    var self = this;
    self.selecting = on;
    self.selected = {};
    self.root.classList.toggle("selecting", on);
    Array.prototype.forEach.call(self.root.querySelectorAll(".tile"), function (tile) {
      if (on) tile.setAttribute("aria-pressed", "false");
      else tile.removeAttribute("aria-pressed");
    });
    if (self.onselect) self.onselect();
  };

  Timeline.prototype.toggle = function (tile) {
    var media = this.items[parseInt(tile.dataset.index, 10)];
    if (this.selected[media.id]) delete this.selected[media.id];
    else this.selected[media.id] = true;
    tile.setAttribute("aria-pressed", this.selected[media.id] ? "true" : "false");
    if (this.onselect) this.onselect();
  };

  Timeline.prototype.selectedIds = function () {
    return Object.keys(this.selected).map(function (id) { return parseInt(id, 10); });
  };

  /* The photos page and an album page: the grid, scrolling, the viewer, selecting. */
  function gridPage() {
    var root = document.getElementById("timeline");
    var album = root.dataset.album ? parseInt(root.dataset.album, 10) : null;
    var timeline = new Timeline(root, document.documentElement.lang, album);
    var sentinel = document.getElementById("more");
    var bar = document.getElementById("selection");
    var start = document.getElementById("select-start");
    root.addEventListener("click", function (event) {
      var tile = event.target.closest ? event.target.closest(".tile") : null;
      if (!tile) return;
      if (timeline.selecting) timeline.toggle(tile);
      else if (window.PicupViewer) window.PicupViewer.open(timeline, parseInt(tile.dataset.index, 10));
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
    if (bar) {
      timeline.onselect = function () {
        var n = timeline.selectedIds().length;
        bar.hidden = !timeline.selecting;
        if (start) start.hidden = timeline.selecting;
        bar.querySelector(".count").textContent = text(n ? "n_selected" : "tap_to_select", { count: n });
        Array.prototype.forEach.call(bar.querySelectorAll("button.primary"), function (b) { b.disabled = !n; });
      };
      if (start) start.addEventListener("click", function () { timeline.select(true); bar.querySelector("[data-action=done]").focus(); });
      bar.addEventListener("click", function (event) {
        var action = event.target.getAttribute("data-action");
        if (action === "done") { timeline.select(false); if (start) start.focus(); }
        else if (action && Picup.selectionActions[action]) Picup.selectionActions[action](timeline);
      });
    }
    Picup.timeline = timeline;
    Picup.refresh = function () { timeline.reset(); return fill(); };
    return ensureCsrf().then(fill);
  }

  /* ---------------------------------------------------------------- trash */
  function trashPage() {
    var list = document.getElementById("trash");
    var notice = document.getElementById("trash-notice");
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
          picture.removeAttribute("aria-label");
          var words = document.createElement("p");
          var gone = new Intl.DateTimeFormat(lang, { dateStyle: "long" }).format(new Date(media.purge_at));
          words.textContent = media.filename + " · " + text("gone_on", { date: gone });
          var restore = document.createElement("button");
          restore.type = "button";
          restore.textContent = text("restore");
          restore.setAttribute("aria-label", text("restore_name", { name: media.filename }));
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
    Picup.refresh = show;
    ensureCsrf().then(show);
  }

  /* A plain-words message at the bottom of the screen, with an optional undo. */
  var noticeTimer = null;
  function notify(message, undo) {
    var notice = document.getElementById("notice");
    if (!notice) return;
    notice.querySelector("span").textContent = message;
    var button = notice.querySelector("button");
    button.hidden = !undo;
    button.onclick = function () { notice.hidden = true; if (undo) undo(); };
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { notice.hidden = true; }, 15000);
  }

  function closeDialog(dialog) { if (dialog.open) dialog.close(); }

  /* A new element with a class and words (always as text, never as HTML). */
  function el(tag, className, words) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (words !== undefined) node.textContent = words;
    return node;
  }

  /* An error's message in a form's alert line. */
  function showError(node, error) {
    node.textContent = error.message;
    node.hidden = false;
  }

  var Picup = window.Picup = {
    api: api, text: text, fillTile: fillTile, ensureCsrf: ensureCsrf, localTaken: localTaken,
    placeholder: placeholder, notify: notify, closeDialog: closeDialog, el: el, showError: showError,
    selectionActions: {},
    refresh: function () { return Promise.resolve(); }
  };

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
  /* the other scripts (defer, after this one) add their selection actions before the DOM is ready */
  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("timeline")) gridPage();
    if (document.getElementById("trash")) trashPage();
  });
})();
