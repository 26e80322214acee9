/*
 * Validation pages: "validation.<wave>" events carry data only. The run's progress bar
 * moves from the data; the regions marked data-refresh-url are fetched again (htmx, at
 * most every 400 ms) when something else changed: a run finished, a discrepancy or a
 * review changed.
 */
(function () {
  "use strict";
  var timers = new WeakMap();

  function refresh(el) {
    if (!window.htmx || timers.get(el)) return;
    timers.set(el, setTimeout(function () {
      timers.delete(el);
      window.htmx.ajax("GET", el.dataset.refreshUrl, { target: el, swap: "innerHTML" });
    }, 400));
  }

  function moveBar(el, run) {
    var box = el.querySelector("#run-progress");
    if (!box || box.dataset.runId !== String(run.id) || run.state === "done" || run.state === "failed") {
      return false;
    }
    var percent = run.total ? Math.round((100 * run.done) / run.total) : 0;
    var bar = box.querySelector('[role="progressbar"]');
    bar.setAttribute("aria-valuenow", percent);
    bar.setAttribute("aria-valuetext", run.done + " of " + run.total + " studies");
    bar.querySelector(".progress-done").style.width = percent + "%";
    box.dataset.state = run.state;
    box.querySelector('[data-role="done"]').textContent = run.done;
    box.querySelector('[data-role="total"]').textContent = run.total;
    box.querySelector('[data-role="state"]').textContent = run.state.charAt(0).toUpperCase() + run.state.slice(1);
    return true;
  }

  function onEvent(event) {
    var data = event.detail.data || {};
    document.querySelectorAll("[data-refresh-url]").forEach(function (el) {
      if (el.dataset.liveTopic.split(/\s+/).indexOf(event.detail.topic) < 0) return;
      if (data.run) {
        if (moveBar(el, data.run)) return;
        var busy = data.run.state === "queued" || data.run.state === "running";
        if (busy && !el.querySelector("#run-progress")) return;
      }
      refresh(el);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-url][data-live-topic]").forEach(function (el) {
      el.dataset.liveTopic.split(/\s+/).forEach(function (topic) {
        document.addEventListener("live:" + topic, onEvent);
      });
    });
  });
})();
