/*
 * Gantt chart behaviour: drag a bar sideways to try a new start date (snapped to days);
 * the server answers how go-live would move, and nothing is saved until "Save".
 * A click without a drag follows the bar's link (the task's edit page). The chart is
 * re-fetched when its roadmap's live topic reports a change.
 */
(function () {
  "use strict";
  var DAY = 86400000;

  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function shiftDate(iso, days) {
    var d = new Date(iso + "T00:00:00Z");
    return new Date(d.getTime() + days * DAY).toISOString().slice(0, 10);
  }

  function post(url, data) {
    var body = new URLSearchParams(data);
    return fetch(url, { method: "POST", body: body, headers: { "X-CSRFToken": csrf() }, credentials: "same-origin" })
      .then(function (r) { return r.text(); });
  }

  function setup(container) {
    var moveUrl = container.dataset.moveUrl;
    var dialog = document.getElementById("move-dialog");
    var drag = null;

    function svgScale(svg) {
      var box = svg.getBoundingClientRect();
      return box.width / svg.viewBox.baseVal.width;
    }

    container.addEventListener("pointerdown", function (event) {
      var bar = event.target.closest(".bar");
      if (!moveUrl || !bar || event.button !== 0) return;
      event.preventDefault(); /* no native link drag, no text selection */
      var svg = bar.ownerSVGElement;
      drag = { bar: bar, svg: svg, x: event.clientX, days: 0, moved: false,
               ppd: parseFloat(svg.dataset.pxPerDay) * svgScale(svg) };
    });

    container.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var dx = event.clientX - drag.x;
      if (Math.abs(dx) > 4) drag.moved = true;
      if (!drag.moved) return;
      drag.svg.classList.add("dragging");
      drag.days = Math.round(dx / drag.ppd);
      drag.bar.setAttribute("transform", "translate(" + (drag.days * drag.ppd / svgScale(drag.svg)) + ",0)");
      event.preventDefault();
    });

    function finish(event) {
      if (!drag) return;
      var d = drag;
      drag = null;
      d.svg.classList.remove("dragging");
      if (!d.moved) return;
      event.preventDefault();
      d.bar.dataset.justDragged = "1";
      if (d.days === 0) { d.bar.removeAttribute("transform"); return; }
      propose(d.bar, shiftDate(d.bar.dataset.start, d.days));
    }
    container.addEventListener("pointerup", finish);
    container.addEventListener("pointercancel", function () {
      if (drag) { drag.bar.removeAttribute("transform"); drag = null; }
    });
    container.addEventListener("dragstart", function (event) {
      if (event.target.closest && event.target.closest(".bar")) event.preventDefault();
    });
    container.addEventListener("click", function (event) {
      var bar = event.target.closest(".bar");
      if (bar && bar.dataset.justDragged) { event.preventDefault(); delete bar.dataset.justDragged; }
    }, true);

    function propose(bar, start) {
      var url = moveUrl.replace("/0/", "/" + bar.dataset.task + "/");
      dialog.querySelector("[data-role=task]").textContent = bar.dataset.code;
      dialog.querySelector("[data-role=start]").textContent = start;
      var preview = dialog.querySelector("[data-role=preview]");
      preview.textContent = "Working out how go-live moves…";
      dialog.showModal();
      post(url, { start: start, preview: "1" }).then(function (html) { preview.innerHTML = html; });
      dialog.querySelector("[data-role=save]").onclick = function () {
        post(url, { start: start }).then(function (html) {
          preview.innerHTML = html;
          dialog.close();
          refresh(container);
        });
      };
      dialog.querySelector("[data-role=cancel]").onclick = function () {
        bar.removeAttribute("transform");
        dialog.close();
      };
    }
  }

  function refresh(container) {
    fetch(container.dataset.refreshUrl, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (svg) { container.innerHTML = svg; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("gantt");
    if (!container) return;
    setup(container);
    document.addEventListener("live:" + container.dataset.refreshTopic, function () { refresh(container); });
  });
})();
