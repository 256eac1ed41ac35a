/* Slideshows for the TV: "Show on TV" (make a link, then its code, QR code and settings)
   and the Slideshows page (every link: how it plays, pause, end date, a new code, turn off).
   Settings live on the server; the TV picks up a change within a minute. */
(function () {
  "use strict";
  var Picup = window.Picup;
  if (!Picup) return;
  var api = Picup.api, text = Picup.text, el = Picup.el, showError = Picup.showError;
  var lang = document.documentElement.lang;
  var SETTINGS = ["seconds", "order", "videos", "video_limit", "show_date", "show_title", "show_clock", "fit",
                  "download"];

  function time(iso) {
    return new Intl.DateTimeFormat(lang, { timeStyle: "short" }).format(new Date(iso));
  }
  function dateTime(iso) {
    return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
  }
  function day(date) {
    return new Intl.DateTimeFormat(lang, { dateStyle: "long" }).format(date);
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* ``ends_at`` is the local midnight after the last day shown; the form shows that last day. */
  function lastDay(iso) {
    return iso ? new Date(new Date(iso).getTime() - 1) : null;
  }
  function endsAt(value) {
    if (!value) return null;
    var parts = value.split("-");
    return new Date(+parts[0], +parts[1] - 1, +parts[2] + 1).toISOString();
  }

  /* ------------------------------------------------ how it plays */
  var template = document.getElementById("tv-settings");

  function settingsForm(show, saved) {
    var form = template.content.firstElementChild.cloneNode(true);
    var f = form.elements, error = form.querySelector(".error"), status = form.querySelector(".saved");
    var s = show.settings;
    SETTINGS.forEach(function (name) {
      if (f[name].type === "checkbox") f[name].checked = !!s[name];
      else f[name].value = s[name];
    });
    f.quiet.checked = !!s.quiet_from;
    f.quiet_from.value = s.quiet_from || "22:00";
    f.quiet_to.value = s.quiet_to || "07:00";
    var last = lastDay(show.ends_at);
    f.ends_on.value = last ? last.getFullYear() + "-" + pad(last.getMonth() + 1) + "-" + pad(last.getDate()) : "";

    function follow() {
      form.querySelector("[data-when=cut]").hidden = f.videos.value !== "cut";
      form.querySelector("[data-when=quiet]").hidden = !f.quiet.checked;
      status.textContent = "";
    }
    form.addEventListener("change", follow);
    follow();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      var body = {
        seconds: parseInt(f.seconds.value, 10), order: f.order.value, videos: f.videos.value,
        video_limit: parseInt(f.video_limit.value, 10) || s.video_limit,
        show_date: f.show_date.checked, show_title: f.show_title.checked, show_clock: f.show_clock.checked,
        fit: f.fit.value, download: f.download.checked,
        quiet_from: f.quiet.checked ? f.quiet_from.value : null,
        quiet_to: f.quiet.checked ? f.quiet_to.value : null,
        ends_at: endsAt(f.ends_on.value)
      };
      api("PATCH", "/api/v1/slideshows/" + show.id, body).then(function (result) {
        show = result.data.slideshow;
        s = show.settings;
        status.textContent = text("tv_saved");
        if (saved) saved(show);
      }, function (e) { showError(error, e); });
    });
    return form;
  }

  /* ------------------------------------------------ "Show on TV" */
  var dialog = document.getElementById("tv-dialog");
  var current = null;

  function made(show) {
    current = show;
    var box = dialog.querySelector(".tv-made");
    dialog.querySelector(".tv-choose").hidden = true;
    box.hidden = false;
    box.querySelector(".tv-code-url").textContent = show.code_url;
    box.querySelector(".tv-code").textContent = show.code ? show.code.slice(0, 3) + " " + show.code.slice(3) : "—";
    box.querySelector(".tv-code-note").textContent =
      show.code ? text("tv_code_until", { time: time(show.code_expires_at) }) : text("tv_code_gone");
    box.querySelector(".tv-qr").src = "/api/v1/slideshows/" + show.id + "/qr";
    box.querySelector(".tv-link").value = show.url;
    var details = box.querySelector(".tv-settings");
    var old = details.querySelector("form");
    if (old) details.removeChild(old);
    details.appendChild(settingsForm(show, function (changed) { current = changed; refreshList(); }));
  }

  function openDialog(show) {
    var error = dialog.querySelector(".error");
    error.hidden = true;
    dialog.querySelector(".tv-made").hidden = true;
    dialog.querySelector(".tv-settings").open = false;
    var album = dialog.getAttribute("data-album");
    if (show) {
      made(show);
    } else if (album) {
      api("POST", "/api/v1/slideshows", { album_id: parseInt(album, 10) }).then(function (result) {
        made(result.data.slideshow);
        refreshList();
      }, function (e) { showError(error, e); });
    } else {
      dialog.querySelector(".tv-choose").hidden = false;
    }
    dialog.showModal();
    var first = dialog.querySelector(".tv-choose:not([hidden]) button") || dialog.querySelector("[data-action=close]");
    first.focus();
  }

  function copy() {
    var input = dialog.querySelector(".tv-link");
    function copied() { Picup.notify(text("tv_copied")); }
    input.select();
    /* navigator.clipboard needs HTTPS; a home server is often plain HTTP on the LAN */
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, function () {});
    } else if (document.execCommand && document.execCommand("copy")) {
      copied();
    }
  }

  if (dialog) {
    dialog.addEventListener("click", function (event) {
      var target = event.target;
      var error = dialog.querySelector(".error");
      var source = target.getAttribute("data-source");
      var action = target.getAttribute("data-action");
      if (source) {
        error.hidden = true;
        api("POST", "/api/v1/slideshows", { source: source }).then(function (result) {
          made(result.data.slideshow);
          refreshList();
          dialog.querySelector("[data-action=close]").focus();
        }, function (e) { showError(error, e); });
      } else if (action === "new-code" && current) {
        api("PATCH", "/api/v1/slideshows/" + current.id, { new_code: true }).then(function (result) {
          made(result.data.slideshow);
        }, function (e) { showError(error, e); });
      } else if (action === "copy") {
        copy();
      } else if (action === "close") {
        Picup.closeDialog(dialog);
      }
    });
    var start = document.getElementById("tv-start");
    if (start) start.addEventListener("click", function () { openDialog(null); });
  }

  /* ------------------------------------------------ the Slideshows page */
  var list = document.getElementById("slideshows");
  var turnOff = document.getElementById("turn-off-dialog");

  function stateWords(show) {
    var last = lastDay(show.ends_at);
    if (last && new Date(show.ends_at) <= new Date()) return text("tv_state_ended", { date: day(last) });
    var words = text(show.paused ? "tv_state_paused" : "tv_state_playing");
    return last ? words + " · " + text("tv_state_ends", { date: day(last) }) : words;
  }

  function card(show) {
    var item = el("li", "card slideshow");
    item.setAttribute("data-id", show.id);
    item.appendChild(el("h2", "", show.title));
    item.appendChild(el("p", "state", stateWords(show)));
    item.appendChild(el("p", "hint", show.last_seen_at ? text("tv_last_seen", { time: dateTime(show.last_seen_at) })
                                                       : text("tv_never_seen")));
    item.appendChild(el("p", "hint", text("tv_made_on", { date: dateTime(show.created_at) })));
    var row = el("div", "row");
    var pause = el("button", "", text(show.paused ? "tv_resume" : "tv_pause"));
    pause.type = "button";
    pause.onclick = function () {
      api("PATCH", "/api/v1/slideshows/" + show.id, { paused: !show.paused }).then(refreshList, function (e) {
        Picup.notify(e.message);
      });
    };
    var link = el("button", "", text("tv_link_and_code"));
    link.type = "button";
    link.onclick = function () {
      var ask = show.code ? Promise.resolve({ data: { slideshow: show } })
                          : api("PATCH", "/api/v1/slideshows/" + show.id, { new_code: true });
      ask.then(function (result) { openDialog(result.data.slideshow); }, function (e) { Picup.notify(e.message); });
    };
    var off = el("button", "danger", text("tv_turn_off"));
    off.type = "button";
    off.onclick = function () { askTurnOff(show); };
    row.appendChild(pause);
    row.appendChild(link);
    row.appendChild(off);
    item.appendChild(row);
    var details = el("details", "tv-settings");
    details.appendChild(el("summary", "", text("tv_how_it_plays")));
    details.appendChild(settingsForm(show, function (changed) {
      item.querySelector(".state").textContent = stateWords(changed);
    }));
    item.appendChild(details);
    return item;
  }

  function askTurnOff(show) {
    turnOff.querySelector("h2").textContent = text("tv_turn_off_question", { title: show.title });
    turnOff.returnValue = "";
    turnOff.onclose = function () {
      if (turnOff.returnValue !== "off") return;
      api("DELETE", "/api/v1/slideshows/" + show.id).then(function () {
        Picup.notify(text("tv_turned_off"));
        refreshList();
      }, function (e) { Picup.notify(e.message); });
    };
    turnOff.showModal();
  }

  /* Rebuild the cards, keeping open the settings a person is looking at. */
  function refreshList() {
    if (!list) return Promise.resolve();
    return api("GET", "/api/v1/slideshows").then(function (result) {
      var open = {};
      Array.prototype.forEach.call(list.querySelectorAll("li"), function (item) {
        if (item.querySelector("details").open) open[item.getAttribute("data-id")] = true;
      });
      list.textContent = "";
      result.data.slideshows.forEach(function (show) {
        var item = card(show);
        if (open[show.id]) item.querySelector("details").open = true;
        list.appendChild(item);
      });
      document.getElementById("empty").hidden = result.data.slideshows.length > 0;
    });
  }

  if (list) {
    Picup.refresh = refreshList;
    refreshList();
  }
})();
