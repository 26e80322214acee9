/*
 * Automatic logoff, seen from the browser. The server ends a session idle for
 * data-session-timeout seconds; this warns data-session-warning seconds before, offers
 * "Stay signed in" (a POST that renews the session) and, when the time is up, reloads
 * the page, which then asks for a login. Any htmx request counts as activity too.
 */
(function () {
  "use strict";
  var body, timeout, warning, url, lastActivity, timer;

  function csrfToken() {
    try { return JSON.parse(body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function panel() { return document.getElementById("session-warning"); }

  function activity() {
    lastActivity = Date.now();
    panel().hidden = true;
  }

  function tick() {
    var left = timeout - (Date.now() - lastActivity) / 1000;
    if (left <= 0) {
      clearInterval(timer);
      window.location.reload();
      return;
    }
    if (left <= warning) {
      panel().hidden = false;
      var minutes = Math.floor(left / 60), seconds = Math.floor(left % 60);
      document.getElementById("session-countdown").textContent =
        (minutes ? minutes + " min " : "") + seconds + " s";
    }
  }

  function stay() {
    fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } })
      .then(function (response) { if (response.ok) activity(); else window.location.reload(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    body = document.body;
    if (!body.dataset.sessionTimeout || !panel()) return;
    timeout = parseFloat(body.dataset.sessionTimeout);
    warning = Math.min(parseFloat(body.dataset.sessionWarning), timeout / 2);
    url = body.dataset.sessionUrl;
    lastActivity = Date.now();
    document.getElementById("session-stay").addEventListener("click", stay);
    document.addEventListener("htmx:afterRequest", activity);
    timer = setInterval(tick, 1000);
  });
})();
