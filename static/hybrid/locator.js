/*
 * The locator's study cards follow their study live: a card lists its topics in
 * data-refresh-topics (the study's own, its wave's progress); when an event arrives on one
 * of them, the card re-reads itself (htmx "refresh" on its [data-refresh-url] holder).
 * The topics are subscribed through live.js, on elements that stay out of the page so
 * that live.js never replaces their content.
 */
(function () {
  "use strict";
  var watched = new Set();

  function refresh(topic) {
    document.querySelectorAll("[data-refresh-topics]").forEach(function (el) {
      if (el.dataset.refreshTopics.split(/\s+/).indexOf(topic) < 0) return;
      var card = el.closest("[data-refresh-url]");
      if (card && window.htmx) window.htmx.trigger(card, "refresh");
    });
  }

  function watch(root) {
    var holder = document.createElement("div");
    (root || document).querySelectorAll("[data-refresh-topics]").forEach(function (el) {
      el.dataset.refreshTopics.split(/\s+/).forEach(function (topic) {
        if (!topic || watched.has(topic)) return;
        watched.add(topic);
        var span = document.createElement("span");
        span.dataset.liveTopic = topic;
        holder.appendChild(span);
        document.addEventListener("live:" + topic, function () { refresh(topic); });
      });
    });
    if (holder.children.length && window.live) window.live.watch(holder);
  }

  document.addEventListener("DOMContentLoaded", function () { watch(document); });
  document.addEventListener("htmx:afterSwap", function (event) { watch(event.target); });
})();
