// suture's pages: small enhancements only; every page is whole without them.
(function () {
  "use strict";

  // The quiet window's countdown: the server rendered the time left.
  var countdown = document.getElementById("countdown");
  if (countdown) {
    var until = Date.parse(countdown.getAttribute("data-until"));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var tick = function () {
      var s = Math.max(0, Math.round((until - Date.now()) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
      countdown.textContent = h ? h + "h " + pad(m) + "m " + pad(r) + "s"
        : m ? m + "m " + pad(r) + "s" : r + "s";
      if (s > 0) { setTimeout(tick, 1000); }
    };
    tick();
  }

  // Reload once what the page shows has moved on (its digest changed), not
  // while someone is typing into a form, checking every 5 s while visible.
  var watch = document.querySelector('meta[name="suture-watch"]');
  if (!watch || !window.fetch) { return; }
  var seen = watch.getAttribute("content");
  var pattern = /<meta name="suture-watch" content="([0-9a-f]*)"/;
  var later = function () { setTimeout(check, 5000); };
  var busy = function () {
    var active = document.activeElement;
    return active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  };
  var check = function () {
    if (document.visibilityState !== "visible" || busy()) { return later(); }
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var found = pattern.exec(html);
        if (found && found[1] !== seen) { location.reload(); } else { later(); }
      })
      .catch(later);
  };
  later();
})();
