/*
 * Live page regions over one websocket.
 *
 * Any element with data-live-topic="TOPIC" subscribes to that topic. When an event
 * arrives with an "html" fragment, the element's content is replaced (default) or the
 * fragment is inserted (data-live-swap="afterbegin" | "beforeend"). Every event is also
 * dispatched on document as a CustomEvent "live:TOPIC" (detail = the message) so page
 * scripts can react to data-only events. The #live-status element shows the
 * connection state; the socket reconnects by itself with capped backoff.
 */
(function () {
  "use strict";
  var socket = null;
  var attempts = 0;
  var topics = new Set();

  function setStatus(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  function collectTopics(root) {
    (root || document).querySelectorAll("[data-live-topic]").forEach(function (el) {
      el.dataset.liveTopic.split(/\s+/).forEach(function (t) { if (t) topics.add(t); });
    });
  }

  function subscribe() {
    if (socket && socket.readyState === WebSocket.OPEN && topics.size) {
      socket.send(JSON.stringify({ subscribe: Array.from(topics) }));
    }
  }

  function apply(message) {
    if (message.html !== undefined) {
      document.querySelectorAll('[data-live-topic~="' + message.topic + '"]').forEach(function (el) {
        var swap = el.dataset.liveSwap || "inner";
        if (swap === "inner") {
          el.innerHTML = message.html;
        } else {
          var empty = el.querySelector(":scope > .empty");
          if (empty) empty.remove();
          el.insertAdjacentHTML(swap, message.html);
        }
        if (window.htmx) window.htmx.process(el);
      });
    }
    document.dispatchEvent(new CustomEvent("live:" + message.topic, { detail: message }));
  }

  function onMessage(event) {
    var message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    if (message.subscribed) {
      var status = document.getElementById("live-status");
      if (status) status.dataset.subscribed = message.subscribed.join(" ");
      document.dispatchEvent(new CustomEvent("live:subscribed", { detail: message }));
      return;
    }
    if (message.topic) apply(message);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    setStatus(attempts ? "reconnecting" : "connecting", attempts ? "reconnecting…" : "connecting…");
    socket = new WebSocket(scheme + location.host + "/ws/events/");
    socket.addEventListener("open", function () {
      attempts = 0;
      setStatus("connected", "live");
      subscribe();
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      if (event.code === 4401) { setStatus("offline", "signed out"); return; }
      if (event.code === 4403) attempts = 0;  // roles changed: subscribe again at once
      attempts += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, Math.min(attempts, 6))) * (0.75 + Math.random() / 2);
      setStatus("reconnecting", "reconnecting…");
      setTimeout(connect, delay);
    });
  }

  window.live = {
    /** Subscribe to more topics, e.g. after htmx swapped in a region that carries data-live-topic. */
    watch: function (root) { collectTopics(root); subscribe(); },
    get socket() { return socket; },
  };

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("live-status")) return;
    collectTopics(document);
    connect();
  });
  document.addEventListener("htmx:afterSwap", function (event) { window.live.watch(event.target); });
})();
