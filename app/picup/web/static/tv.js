/* Picup TV: the family's photos all day, like a photo frame, for weeks on end.
   ES5 only, for old TV browsers and iOS 9-12 Safari: var and function, XMLHttpRequest, no Promise
   (except wakeLock, which only exists where promises do). Memory stays flat: the same few nodes,
   listeners and timers are reused for every slide. tv-guard.js catches anything thrown here. */
(function () {
  "use strict";
  var doc = document;

  function fallback() {
    if (window.PicupTVFallback) window.PicupTVFallback();
  }
  if (!window.XMLHttpRequest || !window.JSON || !doc.querySelector || !doc.addEventListener ||
      !doc.getElementById("tv-data")) {
    fallback();
    return;
  }

  var data = JSON.parse(doc.getElementById("tv-data").textContent);
  var api = window.PicupTV = { shown: 0, current: null };  /* for tests; kept up to date */

  var lang = data.lang || doc.documentElement.lang || "en";
  var strings = data.strings || {};
  var feedUrl = data.feed_url;
  var settings = data.settings || {};
  var title = data.title || "";
  var state = data.state;

  var DAY = 24 * 3600 * 1000;
  var startedAt = new Date().getTime();

  /* ------------------------------------------------------------------ nodes */
  function byId(id) { return doc.getElementById(id); }
  function layerOf(index) {
    var box = byId("tv-layer-" + index);
    return { box: box, photo: box.querySelector(".photo"), backdrop: box.querySelector(".backdrop"), fit: null };
  }
  var layers = [layerOf(0), layerOf(1)];
  var video = byId("tv-video");
  var dateNode = byId("tv-date"), titleNode = byId("tv-title"), clockNode = byId("tv-clock");
  var downloadNode = byId("tv-download");
  var messageNode = byId("tv-message"), messageText = byId("tv-message-text"), quietNode = byId("tv-quiet");

  function show(node, visible) {
    if (visible) node.removeAttribute("hidden");
    else node.setAttribute("hidden", "");
  }

  /* What this browser can do. */
  var probe = doc.createElement("div").style;
  var objectFit = "objectFit" in probe;
  probe.cssText = "filter: blur(2px); -webkit-filter: blur(2px)";
  var filters = !!(probe.filter || probe.webkitFilter);
  if (!filters) doc.documentElement.className += " no-filter";

  /* ------------------------------------------------------------------ state */
  var items = [];          /* the feed's items, in server order */
  var version = null;      /* the feed's version we have adopted */
  var order = null;        /* the order ``items`` and ``round`` were built for */
  var round = [];          /* shuffle: what is left of this round */
  var cursorId = data.item ? data.item.id : null;  /* the item picked last */
  var cursorIndex = 0;     /* ... and where it was, in case it goes away */
  var lastId = cursorId;   /* the item on screen */
  var top = 0;             /* the layer on top */
  var next = null;         /* {item, layer, ready} being loaded into the other layer */
  var due = false;         /* the current slide has had its time */
  var fading = false;      /* a cross-fade is under way */
  var quiet = false;
  var failures = 0;        /* pictures that failed in a row */
  var videoItem = null;    /* the video playing, or about to */
  var videoStarted = false;
  var videoToken = 0;
  var slideTimer = null, fadeTimer = null, retryTimer = null, videoTimer = null, videoWatch = null;
  var pollTimer = null, minuteTimer = null;

  function running() {
    return state === "playing" && !quiet;
  }

  function seconds() {
    var value = +settings.seconds;
    return value > 0 ? value : 10;
  }

  function fadeMs() {
    return Math.min(1200, seconds() * 400);
  }

  function playsVideo(item) {
    return !!(item && item.video && settings.videos && settings.videos !== "off");
  }

  /* ------------------------------------------------------------------ rotation */
  function indexOf(list, id) {
    for (var i = 0; i < list.length; i++) if (list[i].id === id) return i;
    return -1;
  }

  /* A new round: every item once, in random order, not starting with the one on screen. */
  function shuffled(list) {
    var copy = list.slice(), i, j, swap;
    for (i = copy.length - 1; i > 0; i--) {
      j = Math.floor(Math.random() * (i + 1));
      swap = copy[i]; copy[i] = copy[j]; copy[j] = swap;
    }
    if (copy.length > 1 && copy[0].id === lastId) {
      j = 1 + Math.floor(Math.random() * (copy.length - 1));
      swap = copy[0]; copy[0] = copy[j]; copy[j] = swap;
    }
    return copy;
  }

  /* The feed's items changed: keep our place, let new items join the rotation. */
  function setItems(list) {
    var old = {}, fresh = {}, kept = [], i;
    for (i = 0; i < items.length; i++) old[items[i].id] = true;
    for (i = 0; i < list.length; i++) fresh[list[i].id] = list[i];
    if (settings.order === "shuffle" && order === "shuffle") {
      for (i = 0; i < round.length; i++) if (fresh[round[i].id]) kept.push(fresh[round[i].id]);
      for (i = 0; i < list.length; i++) {
        if (!old[list[i].id]) kept.splice(Math.floor(Math.random() * (kept.length + 1)), 0, list[i]);
      }
      round = kept;
    } else {
      round = [];
    }
    items = list;
    order = settings.order;
  }

  function pick() {
    var item, i;
    if (!items.length) return null;
    if (settings.order !== order) setItems(items);
    if (settings.order === "shuffle") {
      if (!round.length) round = shuffled(items);
      item = round.shift();
    } else {
      i = indexOf(items, cursorId);
      i = i < 0 ? cursorIndex % items.length : (i + 1) % items.length;
      item = items[i];
      cursorIndex = i;
    }
    cursorId = item.id;
    return item;
  }

  /* ------------------------------------------------------------------ slides */
  function schedule(ms) {
    clearTimeout(slideTimer);
    due = false;
    slideTimer = setTimeout(onDue, ms);
  }

  function onDue() {
    slideTimer = null;
    due = true;
    advance();
  }

  function advance() {
    if (!running()) return;
    if (next && next.ready && due) swap();
    else if (!next && !fading) prepare();
  }

  /* ``img`` shows ``url``; true when it already does (no load event will come). */
  function point(img, url) {
    if (img.getAttribute("src") === url && img.complete && img.naturalWidth) return true;
    img.src = url;
    return false;
  }

  /* Load the next picture into the hidden layer; it is shown once loaded and due. */
  function prepare() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (!running() || next || fading) return;
    var item = pick();
    if (!item) return;
    var index = 1 - top, layer = layers[index];
    next = { item: item, layer: index, ready: false };
    layer.fit = settings.fit === "fill" ? "fill" : "contain";
    if (layer.fit === "contain" && filters) point(layer.backdrop, item.src);
    if (point(layer.photo, item.src)) retryTimer = setTimeout(onReadyAgain, 0);
  }

  function onReadyAgain() {
    retryTimer = null;
    if (next && next.layer === 1 - top) onLoad(next.layer);
  }

  function onLoad(index) {
    if (!next || next.ready || next.layer !== index) return;
    if (layers[index].photo.getAttribute("src") !== next.item.src) return;
    next.ready = true;
    failures = 0;
    advance();
  }

  function onError(index) {
    if (!next || next.ready || next.layer !== index) return;
    next = null;
    failures += 1;
    clearTimeout(retryTimer);
    /* Everything failing (server restarting, network down): keep this slide, try again later. */
    retryTimer = setTimeout(prepare, failures >= Math.max(items.length, 1) ? 30000 : 50);
    if (failures >= Math.max(items.length, 1)) failures = 0;
  }

  /* Without object-fit: size the photo ourselves (the stylesheet centres it). */
  function layout(layer) {
    if (objectFit) return;
    var img = layer.photo, w = img.naturalWidth, h = img.naturalHeight;
    if (!w || !h) return;
    var width = window.innerWidth || doc.documentElement.clientWidth;
    var height = window.innerHeight || doc.documentElement.clientHeight;
    var scale = layer.fit === "fill" ? Math.max(width / w, height / h) : Math.min(width / w, height / h);
    img.style.maxWidth = img.style.maxHeight = "none";
    img.style.minWidth = img.style.minHeight = "0";
    img.style.width = Math.round(w * scale) + "px";
    img.style.height = Math.round(h * scale) + "px";
  }

  function setFade(layer, ms) {
    var value = ms + "ms";
    if (layer.box.style.transitionDuration !== value) {
      layer.box.style.webkitTransitionDuration = value;
      layer.box.style.transitionDuration = value;
    }
  }

  /* Cross-fade to the prepared slide: it fades in on top of the one showing. */
  function swap() {
    var incoming = layers[next.layer], outgoing = layers[top], item = next.item;
    top = next.layer;
    next = null;
    due = false;
    clearTimeout(slideTimer);
    slideTimer = null;
    stopVideo(false);
    incoming.fit = settings.fit === "fill" ? "fill" : "contain";  /* settings apply from this slide */
    if (incoming.fit === "contain" && filters) point(incoming.backdrop, item.src);
    layout(incoming);
    setFade(incoming, fadeMs());
    incoming.box.style.zIndex = 2;
    outgoing.box.style.zIndex = 1;
    incoming.box.className = "layer fit-" + incoming.fit + " on";
    fading = true;
    clearTimeout(fadeTimer);
    fadeTimer = setTimeout(afterFade, fadeMs() + 60);
    shown(item);
    begin(item);
  }

  function afterFade() {
    fadeTimer = null;
    fading = false;
    var hidden = layers[1 - top];
    hidden.box.className = "layer fit-" + (hidden.fit || "contain") + " off";  /* out of sight, at once */
    if (window.getComputedStyle) window.getComputedStyle(hidden.box).opacity;  /* so the next fade starts from 0 */
    if (!videoItem) unloadVideo();
    else if (!videoStarted && running()) playVideo();
    advance();
  }

  /* A slide is on screen: the caption, the clock, the counters. */
  function shown(item) {
    lastId = item.id;
    api.current = item.id;
    api.shown += 1;
    var words = settings.show_date ? dateWords(item) : "";
    dateNode.textContent = words;
    show(dateNode, !!words);
    titleNode.textContent = title;
    show(titleNode, !!(settings.show_title && title));
    if (item.original) downloadNode.setAttribute("href", item.original);
    show(downloadNode, !!item.original);
    tick(false);
  }

  /* The slide's time: ``seconds`` for a photo, the video's own time for a video. */
  function begin(item) {
    if (playsVideo(item)) {
      videoItem = item;
      videoStarted = false;
      if (!fading && running()) playVideo();
    } else {
      schedule(seconds() * 1000);
    }
  }

  /* ------------------------------------------------------------------ videos */
  function playVideo() {
    if (!video || !videoItem) return;
    videoStarted = true;
    video.className = "video" + (settings.fit === "fill" ? " fit-fill" : "");
    video.muted = true;
    video.setAttribute("src", videoItem.video);
    var token = ++videoToken;
    try {
      var promise = video.play();
      if (promise && promise.then) {
        promise.then(null, function () {
          if (token === videoToken && videoItem && video.paused) videoFailed();  /* not an earlier video's */
        });
      }
    } catch (e) {
      videoFailed();
      return;
    }
    clearTimeout(videoWatch);
    videoWatch = setTimeout(videoFailed, 20000);  /* never started: skip it */
  }

  function onVideoPlaying() {
    if (!videoItem || video.getAttribute("src") !== videoItem.video) return;
    clearTimeout(videoWatch);
    videoWatch = null;
    video.className = "video on" + (settings.fit === "fill" ? " fit-fill" : "");
    if (videoTimer) return;  /* playing again after buffering */
    var duration = +videoItem.duration || 0;
    var limit = +settings.video_limit || 30;
    var ms;
    if (settings.videos === "cut") ms = (duration > 0 ? Math.min(duration, limit) : limit) * 1000;
    else ms = (duration > 0 ? duration + 30 : 3600) * 1000;  /* "full": "ended" should come first */
    videoTimer = setTimeout(videoDone, ms);
  }

  function onVideoEnded() {
    if (videoItem && video.getAttribute("src") === videoItem.video) videoDone();
  }

  function onVideoError() {
    if (videoItem && video.error && video.getAttribute("src") === videoItem.video) videoFailed();
  }

  function videoDone() {
    if (!videoItem) return;
    stopVideo(false);
    due = true;
    advance();
  }

  function videoFailed() {
    if (!videoItem) return;
    stopVideo(true);
    due = true;
    advance();
  }

  /* Stop the video; it fades out (``now``: is gone at once) and is unloaded after the fade. */
  function stopVideo(now) {
    clearTimeout(videoTimer);
    clearTimeout(videoWatch);
    videoTimer = videoWatch = null;
    videoItem = null;
    videoStarted = false;
    if (!video) return;
    if (video.getAttribute("src")) {
      try { video.pause(); } catch (e) { /* nothing to pause */ }
    }
    video.className = "video";
    if (now) unloadVideo();
  }

  function unloadVideo() {
    if (!video || !video.getAttribute("src")) return;
    video.removeAttribute("src");
    try { video.load(); } catch (e) { /* frees the decoder where it can */ }
  }

  /* ------------------------------------------------------------------ stop and go */
  function halt() {
    clearTimeout(slideTimer);
    clearTimeout(retryTimer);
    slideTimer = retryTimer = null;
    stopVideo(true);
  }

  function resume() {
    due = true;
    if (next && !next.ready && layers[next.layer].photo.complete) {
      /* it finished loading while we were stopped (its ready-check timer was cleared) */
      var photo = layers[next.layer].photo;
      if (photo.naturalWidth && photo.getAttribute("src") === next.item.src) next.ready = true;
      else next = null;
    }
    advance();
  }

  function setState(value) {
    if (value !== "playing" && value !== "paused" && value !== "empty") return;
    var was = running();
    state = value;
    if (state !== "playing") messageText.textContent = strings[state === "paused" ? "tv_paused" : "tv_empty"] || "";
    show(messageNode, state !== "playing");
    if (was && !running()) halt();
    else if (!was && running()) resume();
  }

  /* ------------------------------------------------------------------ quiet hours and clock */
  function minutes(text) {
    var match = /^(\d{1,2}):(\d{2})/.exec(text || "");
    return match ? +match[1] * 60 + +match[2] : null;
  }

  function isQuiet(now) {
    var from = minutes(settings.quiet_from), to = minutes(settings.quiet_to);
    if (from === null || to === null || from === to) return false;
    var m = now.getHours() * 60 + now.getMinutes();
    return from < to ? m >= from && m < to : m >= from || m < to;
  }

  function checkQuiet() {
    var value = isQuiet(new Date());
    if (value === quiet) return;
    var was = running();
    quiet = value;
    quietNode.className = quiet ? "quiet on" : "quiet";
    if (was && !running()) halt();
    else if (!was && running()) resume();
  }

  function pad(n) {
    return n < 10 ? "0" + n : "" + n;
  }

  /* Each minute: the clock and quiet hours (``rearm``: schedule the next minute). */
  function tick(rearm) {
    var now = new Date();
    show(clockNode, !!settings.show_clock);
    if (settings.show_clock) clockNode.textContent = pad(now.getHours()) + ":" + pad(now.getMinutes());
    if (rearm !== false) {
      clearTimeout(minuteTimer);
      minuteTimer = setTimeout(tick, 60000 - (now.getTime() % 60000) + 100);
      checkQuiet();
    }
  }

  /* ------------------------------------------------------------------ dates */
  var ISO = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?(Z|[+-]\d\d:?\d\d)?$/;

  /* Milliseconds of an ISO date; by hand, as old Safari's Date.parse refuses microseconds. */
  function parseIso(text) {
    var m = ISO.exec(text || "");
    if (!m) return NaN;
    var ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0),
      m[7] ? Math.floor(+("0." + m[7]) * 1000) : 0);
    if (m[8] && m[8] !== "Z") {
      var sign = m[8].charAt(0) === "-" ? -1 : 1, digits = m[8].replace(/[^0-9]/g, "");
      ms -= sign * (+digits.slice(0, 2) * 60 + +digits.slice(2, 4)) * 60000;
    }
    return ms;
  }

  var formats = {};
  /* The day a photo was taken, in words, as the calendar showed where it was taken. */
  function dateWords(item) {
    var ms = parseIso(item.taken_at);
    if (isNaN(ms)) return "";
    var zoned = typeof item.taken_at_offset === "number";
    var moment = new Date(zoned ? ms + item.taken_at_offset * 60000 : ms);
    var key = zoned ? "utc" : "local";
    if (window.Intl && window.Intl.DateTimeFormat) {
      try {
        if (!formats[key]) {
          var options = { year: "numeric", month: "long", day: "numeric" };
          if (zoned) options.timeZone = "UTC";
          formats[key] = new window.Intl.DateTimeFormat(lang, options);
        }
        return formats[key].format(moment);
      } catch (e) { /* an old Intl: the plain form below */ }
    }
    if (zoned) return moment.getUTCFullYear() + "-" + pad(moment.getUTCMonth() + 1) + "-" + pad(moment.getUTCDate());
    return moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate());
  }

  /* ------------------------------------------------------------------ the feed */
  var OFF_KEY = "picup-tv-off";

  /* The slideshow was turned off: reload, and the server says so. Not in a loop, though. */
  function turnedOff() {
    var now = new Date().getTime(), last = 0;
    try { last = +window.sessionStorage.getItem(OFF_KEY) || 0; } catch (e) { last = 0; }
    if (now - last < 5 * 60000) {
      pollAgain(60000);
      return;
    }
    try { window.sessionStorage.setItem(OFF_KEY, "" + now); } catch (e) { /* private mode */ }
    window.location.reload();
  }

  /* One chain of polls, however many requests were under way. */
  function pollAgain(ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, ms);
  }

  function retryMs() {
    return 30000 + Math.floor(Math.random() * 30000);
  }

  function poll() {
    clearTimeout(pollTimer);
    pollTimer = null;
    var xhr = new XMLHttpRequest(), finished = false, limit;
    function done() {
      if (finished || xhr.readyState !== 4) return;
      finished = true;
      clearTimeout(limit);
      xhr.onreadystatechange = null;
      var status = xhr.status, feed = null;
      if (status === 404 || status === 410) {
        turnedOff();
        return;
      }
      if (status === 200) {
        try { feed = JSON.parse(xhr.responseText); } catch (e) { feed = null; }
      }
      if (feed && feed.settings && feed.state) {
        pollAgain(60000);
        adopt(feed);
      } else {
        pollAgain(retryMs());  /* quietly, later */
      }
    }
    xhr.onreadystatechange = done;
    try {
      xhr.open("GET", feedUrl, true);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.send();
    } catch (e) {
      finished = true;
      pollAgain(retryMs());
      return;
    }
    limit = setTimeout(function () {
      if (!finished) xhr.abort();  /* abort ends in readyState 4, status 0: a failure */
      if (!finished) {
        finished = true;
        pollAgain(retryMs());
      }
    }, 20000);
  }

  /* Settings and items apply from the next slide on; the state at once. */
  function adopt(feed) {
    try { window.sessionStorage.removeItem(OFF_KEY); } catch (e) { /* private mode */ }
    if (typeof feed.title === "string") title = feed.title;
    settings = feed.settings;
    if (feed.version !== version || version === null) {
      version = feed.version;
      setItems(feed.items || []);
    }
    setState(feed.state);
    checkQuiet();
    /* After a day, start afresh (browsers leak over weeks) while the server is known to answer. */
    if (new Date().getTime() - startedAt > DAY && !quiet) {
      window.location.reload();
      return;
    }
    advance();
  }

  /* ------------------------------------------------------------------ awake */
  var lock = null;
  function onLockReleased() {
    lock = null;
  }
  function wake() {
    if (!navigator.wakeLock || lock || doc.hidden) return;
    try {
      navigator.wakeLock.request("screen").then(function (sentinel) {
        lock = sentinel;
        if (sentinel.addEventListener) sentinel.addEventListener("release", onLockReleased);
      }, function () { lock = null; });
    } catch (e) { lock = null; }
  }

  function onVisible() {
    if (doc.hidden) return;
    wake();
    tick(true);
    poll();
  }

  function onResize() {
    layout(layers[0]);
    layout(layers[1]);
  }

  /* ------------------------------------------------------------------ start */
  function listenLayer(index) {
    layers[index].photo.addEventListener("load", function () { onLoad(index); }, false);
    layers[index].photo.addEventListener("error", function () { onError(index); }, false);
  }
  listenLayer(0);
  listenLayer(1);
  if (video) {
    video.muted = true;
    video.addEventListener("playing", onVideoPlaying, false);
    video.addEventListener("ended", onVideoEnded, false);
    video.addEventListener("error", onVideoError, false);
  }
  doc.addEventListener("visibilitychange", onVisible, false);
  window.addEventListener("resize", onResize, false);

  /* The server rendered the first slide; take over from it. */
  layers[0].fit = settings.fit === "fill" ? "fill" : "contain";
  layers[1].fit = layers[0].fit;
  layers[0].box.style.zIndex = 2;
  setFade(layers[0], fadeMs());
  setFade(layers[1], fadeMs());
  if (data.item) {
    lastId = api.current = data.item.id;
    api.shown = 1;
    if (layers[0].photo.complete) layout(layers[0]);
    else layers[0].photo.addEventListener("load", onResize, false);
  }
  setState(state);
  tick(true);
  if (data.item && running()) begin(data.item);
  else due = true;
  api.refresh = poll;  /* tests: look at the feed now rather than within the minute */
  wake();
  poll();
})();
