/* The viewer: one photo or video at a time, full screen.
   Arrow keys, swipes and big buttons move; Escape closes; delete has an undo. */
(function () {
  "use strict";
  var Picup = window.Picup;
  var root = document.getElementById("viewer");
  if (!Picup || !root) return;
  var stage = root.querySelector(".stage");
  var caption = root.querySelector(".caption");
  var download = root.querySelector("[data-action=download]");
  var timeline = null;
  var index = 0;
  var opener = null;

  function dateInWords(media) {
    var taken = Picup.localTaken(media);
    return new Intl.DateTimeFormat(document.documentElement.lang, {
      dateStyle: "full", timeStyle: "short", timeZone: taken.zone
    }).format(taken.date);
  }

  /* Originals a browser can show itself; others (HEIC, TIFF…) zoom into the display size. */
  var SHOWABLE = { "image/jpeg": 1, "image/png": 1, "image/webp": 1, "image/gif": 1, "image/avif": 1 };
  var zoomButton = root.querySelector("[data-action=zoom]");
  var heart = root.querySelector("[data-action=favorite]");
  var liveButton = root.querySelector("[data-action=live]");

  /* A Live Photo (an iPhone's still with its few seconds of video): the video plays
     over the still once, with its sound, and the still comes back. The button (or a
     tap on the video) stops it early; a video that cannot play says so. */
  function playLive() {
    var media = timeline.items[index];
    var running = stage.querySelector("video.live");
    if (running) {
      running.pause();
      running.dispatchEvent(new Event("stop"));
      return;
    }
    var img = stage.querySelector("img");
    if (!media.live || !img) return;
    if (stage.classList.contains("zoomed")) zoom(false);
    var video = document.createElement("video");
    video.className = "live";
    video.playsInline = true;
    video.poster = media.urls.preview;
    video.src = media.urls.live;
    video.setAttribute("aria-label", media.filename);
    function back() {
      video.pause();
      if (video.parentNode) stage.replaceChild(img, video);
      liveButton.setAttribute("aria-pressed", "false");
    }
    function failed() {
      if (!video.parentNode) return;  /* stopped on purpose, or moved on */
      back();
      Picup.notify(Picup.text("live_failed"));
    }
    video.addEventListener("ended", back);
    video.addEventListener("stop", back);
    video.addEventListener("click", back);
    video.addEventListener("error", failed);
    stage.replaceChild(video, img);
    liveButton.setAttribute("aria-pressed", "true");
    var playing = video.play();
    if (playing && playing.catch) playing.catch(failed);
  }

  /* The heart: this person's favourite (it feeds the "Favourites" slideshow). */
  function showHeart(media) {
    heart.hidden = media.favorite === undefined;
    heart.setAttribute("aria-pressed", media.favorite ? "true" : "false");
    heart.textContent = " " + Picup.text("favorite");
    var symbol = document.createElement("span");
    symbol.setAttribute("aria-hidden", "true");
    symbol.textContent = media.favorite ? "\u2665" : "\u2661";
    heart.insertBefore(symbol, heart.firstChild);
  }

  function toggleFavorite() {
    var media = timeline.items[index];
    var on = !media.favorite;
    Picup.api(on ? "PUT" : "DELETE", "/api/v1/media/" + media.id + "/favorite").then(function () {
      media.favorite = on;
      if (timeline.items[index] === media) showHeart(media);
    }, function (error) { Picup.notify(error.message); });
  }

  function zoom(on) {
    var media = timeline.items[index];
    var img = stage.querySelector("img");
    if (!img) return;
    stage.classList.toggle("zoomed", on);
    img.src = on && SHOWABLE[media.media_type] ? media.urls.original : media.urls.preview;
    zoomButton.textContent = Picup.text(on ? "zoom_out" : "zoom_in");
    zoomButton.setAttribute("aria-pressed", on ? "true" : "false");
  }

  function show() {
    var media = timeline.items[index];
    stage.textContent = "";
    stage.classList.remove("zoomed");
    zoomButton.hidden = true;
    liveButton.hidden = true;
    liveButton.setAttribute("aria-pressed", "false");
    if (media.render.status === "failed") {
      var message = document.createElement("p");
      message.textContent = Picup.text("cannot_show");
      stage.appendChild(message);
    } else if (media.render.status !== "ready") {
      var waiting = document.createElement("p");
      waiting.textContent = Picup.text("being_prepared");
      stage.appendChild(waiting);
    } else if (media.kind === "video") {
      var video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.poster = media.urls.preview;
      video.src = media.urls.video;
      video.setAttribute("aria-label", media.filename);
      stage.appendChild(video);
    } else {
      var img = document.createElement("img");
      img.src = media.urls.preview;  /* the display size; the original only on download */
      img.alt = media.filename;
      img.addEventListener("dblclick", function () { zoom(!stage.classList.contains("zoomed")); });
      stage.appendChild(img);
      zoomButton.hidden = false;
      zoom(false);
      liveButton.hidden = !media.live;
    }
    caption.textContent = dateInWords(media);
    showHeart(media);
    download.href = media.urls.original + "?download=1";
    root.querySelector("[data-action=previous]").disabled = index === 0;
    root.querySelector("[data-action=next]").disabled = index >= timeline.items.length - 1 && timeline.done;
  }

  function move(step) {
    var target = index + step;
    if (target < 0) return;
    if (target < timeline.items.length) {
      index = target;
      show();
    } else if (!timeline.done) {
      timeline.more().then(function () { if (target < timeline.items.length) { index = target; show(); } });
    }
  }

  function close() {
    var video = stage.querySelector("video");
    if (video) video.pause();
    stage.textContent = "";
    root.hidden = true;
    document.body.classList.remove("viewing");
    if (opener) opener.focus();
  }

  function remove() {
    var media = timeline.items[index];
    Picup.api("DELETE", "/api/v1/media/" + media.id).then(function () {
      close();
      Picup.notify(Picup.text("moved_to_trash"), function () {
        Picup.api("POST", "/api/v1/media/" + media.id + "/restore").then(Picup.refresh);
      });
      return Picup.refresh();
    }, function (error) { Picup.notify(error.message); });
  }

  function addToAlbum() {
    var media = timeline.items[index];
    Picup.chooseAlbum().then(function (album) {
      if (album) return Picup.addToAlbum(album, [media.id]);
    }).then(function () { root.querySelector("[data-action=add-to-album]").focus(); });
  }

  function takeOut() {
    var media = timeline.items[index];
    close();
    Picup.removeFromAlbum([media.id]);
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    var action = button && button.getAttribute("data-action");
    if (action === "previous") move(-1);
    else if (action === "next") move(1);
    else if (action === "close") close();
    else if (action === "delete") remove();
    else if (action === "add-to-album") addToAlbum();
    else if (action === "favorite") toggleFavorite();
    else if (action === "zoom") zoom(!stage.classList.contains("zoomed"));
    else if (action === "live") playLive();
    else if (action === "cover") Picup.setCover(timeline.items[index]);
    else if (action === "remove-from-album") takeOut();
  });

  document.addEventListener("keydown", function (event) {
    if (root.hidden || document.querySelector("dialog[open]")) return;
    if (event.key === "ArrowLeft") move(-1);
    else if (event.key === "ArrowRight") move(1);
    else if (event.key === "Escape") close();
  });

  var touchX = null;
  stage.addEventListener("touchstart", function (event) {
    touchX = event.changedTouches[0].clientX;
  }, { passive: true });
  stage.addEventListener("touchend", function (event) {
    if (touchX === null || stage.classList.contains("zoomed")) return;  /* zoomed in: the finger moves the photo */
    var dx = event.changedTouches[0].clientX - touchX;
    touchX = null;
    if (Math.abs(dx) > 50) move(dx < 0 ? 1 : -1);  /* swipe left: the next photo */
  });

  window.PicupViewer = {
    open: function (fromTimeline, at) {
      timeline = fromTimeline;
      index = at;
      opener = document.activeElement;
      root.hidden = false;
      document.body.classList.add("viewing");
      show();
      root.querySelector("[data-action=close]").focus();
    }
  };
})();
