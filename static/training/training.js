/*
 * Training pages: live row updates and personal notices.
 *
 * Regions marked data-live-rows subscribe (through live.js) to a topic whose events name
 * an element to replace (data.target) and may carry a notice (data.notice). The matching
 * element's outer HTML is replaced by the event's html; notices go to #training-notices.
 * (live.js first puts the html into the hidden sink itself; it is emptied here.)
 */
(function () {
  "use strict";

  function notice(text) {
    var box = document.getElementById("training-notices");
    if (!box || !text) return;
    var p = document.createElement("p");
    p.className = "notice";
    p.textContent = text;
    box.appendChild(p);
  }

  function onEvent(event) {
    var message = event.detail || {};
    var data = message.data || {};
    document.querySelectorAll("[data-live-rows]").forEach(function (sink) { sink.textContent = ""; });
    if (data.target && message.html) {
      var el = document.getElementById(data.target);
      if (el) el.outerHTML = message.html;
    }
    notice(data.notice);
  }

  function setup() {
    document.querySelectorAll("[data-live-rows]").forEach(function (sink) {
      sink.dataset.liveTopic.split(/\s+/).forEach(function (topic) {
        if (topic) document.addEventListener("live:" + topic, onEvent);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
