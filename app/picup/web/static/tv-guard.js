/* Picup TV guard: loaded first, in the head. If the slideshow script fails (an error, or a browser
   it cannot run on), go to the no-script page (data-plain-url on <html>) once. ES3/ES5 only. */
(function () {
  var done = false;

  function fallback() {
    if (done) return;
    done = true;
    var url = document.documentElement.getAttribute("data-plain-url");
    if (url) window.location.replace(url);
  }

  window.PicupTVFallback = fallback;
  window.onerror = function () {
    fallback();
    return false;
  };

  /* tv.js is deferred, so it has run by the time the page has loaded; if it never started
     (not downloaded, or a syntax this browser does not know), fall back too. */
  function check() {
    if (!window.PicupTV) fallback();
  }
  function loaded() {
    setTimeout(check, 2000);
  }
  if (window.addEventListener) window.addEventListener("load", loaded, false);
  else if (window.attachEvent) window.attachEvent("onload", loaded);
  setTimeout(check, 120000);  /* the load event may wait long for a slow first photo */
})();
