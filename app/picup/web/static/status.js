/* The status page (administrator only): the server writes every figure in words; this
   only shows the times in the page's language and this device's time zone. */
(function () {
  "use strict";
  if (!window.Intl) return;
  var format = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: "long", timeStyle: "short" });
  Array.prototype.forEach.call(document.querySelectorAll("main time[datetime]"),
    function (node) {
      var moment = new Date(node.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) node.textContent = format.format(moment);
    });
})();
