/*
 * Command-center pages: SLA clocks and ages that tick locally (no polling: deadlines are
 * data attributes, the browser's own clock does the rest), live counters, and the
 * notification badge and toasts (events on the user's private topic).
 */
(function () {
  "use strict";
  var bands = null;

  function loadBands() {
    var el = document.getElementById("sla-bands");
    bands = el ? JSON.parse(el.textContent) : { bands: [], breached: { band: "breached" } };
  }

  function bandOf(seconds) {
    for (var i = 0; i < bands.bands.length; i++) {
      if (seconds > bands.bands[i].above) return bands.bands[i].band;
    }
    return seconds >= 0 ? bands.bands[bands.bands.length - 1].band : bands.breached.band;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatRemaining(seconds) {
    var sign = seconds < 0 ? "-" : "";
    var total = Math.floor(Math.abs(seconds));
    return sign + Math.floor(total / 3600) + ":" + pad(Math.floor(total % 3600 / 60)) + ":" + pad(total % 60);
  }

  function formatAge(seconds) {
    var minutes = Math.max(0, Math.floor(seconds / 60));
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + pad(minutes % 60) + " min";
    return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  }

  function setBand(el, band) {
    el.className = el.className.replace(/\bband-\S+/g, "").trim() + " band-" + band;
    el.dataset.band = band;
  }

  function tick(root) {
    var now = Date.now();
    (root || document).querySelectorAll("[data-sla][data-due]").forEach(function (el) {
      var remaining = (Date.parse(el.dataset.due) - now) / 1000;
      setBand(el, bandOf(remaining));
      var left = el.querySelector(".left");
      if (left) left.textContent = formatRemaining(remaining);
    });
    (root || document).querySelectorAll("time[data-since]").forEach(function (el) {
      el.textContent = formatAge((now - Date.parse(el.dataset.since)) / 1000);
    });
  }

  function isBreached(card) {
    if (card.dataset.breached === "1") return true;
    var sla = card.querySelector("[data-sla]");
    if (!sla) return false;
    if (sla.dataset.due) return Date.parse(sla.dataset.due) < Date.now();
    return parseFloat(sla.dataset.remaining || "0") < 0;
  }

  function setText(selector, value) {
    document.querySelectorAll(selector).forEach(function (el) { el.textContent = value; });
  }

  function updateCounts(event) {
    var counts = event.detail && event.detail.data && event.detail.data.counts;
    if (!counts) return;
    var open = 0;
    Object.keys(counts.by_priority).forEach(function (p) {
      open += counts.by_priority[p];
      setText('[data-count-priority="' + p + '"]', counts.by_priority[p]);
    });
    Object.keys(counts.by_status).forEach(function (s) {
      setText('[data-count-status="' + s + '"]', counts.by_status[s]);
    });
    setText("[data-count-open]", open);
    if (typeof counts.breached === "number") setText("[data-count-breached]", counts.breached);
  }

  function setBadge(unread) {
    var badge = document.getElementById("cc-badge");
    if (!badge) return;
    badge.textContent = unread;
    badge.dataset.unread = unread;
    var link = document.getElementById("cc-badge-link");
    if (link) link.setAttribute("aria-label", "Notifications, " + unread + " unread");
  }

  function onNotification(event) {
    var data = event.detail.data || {};
    if (typeof data.unread === "number") setBadge(data.unread);
    document.querySelectorAll("#toasts .toast:not([data-timed])").forEach(function (toast) {
      toast.dataset.timed = "1";
      setTimeout(function () { toast.remove(); }, 15000);
    });
  }

  /* The ticket page: status buttons carry the rule they need; hide the viewer's others. */
  function showOwnMoves(sink) {
    var rules = (sink.dataset.rules || "").split(" ");
    var moves = document.getElementById("ticket-moves");
    if (!moves) return;
    var shown = 0;
    moves.querySelectorAll("button[data-rule]").forEach(function (button) {
      button.hidden = rules.indexOf(button.dataset.rule) < 0;
      if (!button.hidden) shown += 1;
    });
    var none = moves.querySelector(".no-moves");
    if (none) none.hidden = shown > 0;
  }

  /* A change of the ticket: every part ([data-part] with an id) replaces its twin. */
  function onTicketChange(sink, event) {
    var fragment = document.createElement("template");
    fragment.innerHTML = event.detail.html || "";
    fragment.content.querySelectorAll("[data-part][id]").forEach(function (part) {
      var old = document.getElementById(part.id);
      if (old) old.replaceWith(part);
    });
    showOwnMoves(sink);
    tick(document);
  }

  function watchTicket() {
    var sink = document.getElementById("ticket-live");
    if (!sink) return;
    showOwnMoves(sink);
    document.addEventListener("live:" + sink.dataset.liveTopic, function (event) {
      onTicketChange(sink, event);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadBands();
    watchTicket();
    tick(document);
    setInterval(function () { tick(document); }, 1000);
    document.addEventListener("live:board", updateCounts);
    var toasts = document.getElementById("toasts");
    if (toasts) {
      document.addEventListener("live:" + toasts.dataset.liveTopic, onNotification);
      toasts.addEventListener("click", function (event) {
        if (event.target.classList.contains("toast-close")) event.target.closest(".toast").remove();
      });
    }
  });

  window.cc = { tick: tick, isBreached: isBreached, bandOf: function (s) { return bandOf(s); } };
})();
