/*
 * Regions with data-refresh-topic="TOPIC" and data-refresh-url="URL" re-fetch their
 * content (rendered for this user, with their buttons) when a live event arrives on the
 * topic. The page also carries a data-live-topic element for that topic so that
 * static/js/live.js subscribes to it.
 */
(function () {
  "use strict";
  function refresh(el) {
    fetch(el.dataset.refreshUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        el.innerHTML = html;
        if (window.htmx) window.htmx.process(el);
        el.dispatchEvent(new CustomEvent("refreshed", { bubbles: true }));
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-topic]").forEach(function (el) {
      if (el.id === "gantt") return; /* gantt.js handles the chart */
      document.addEventListener("live:" + el.dataset.refreshTopic, function () { refresh(el); });
    });
  });
})();
