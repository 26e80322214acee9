/* The waves overview: each "migration.waves" event updates its wave's card in place. */
(function () {
  "use strict";
  document.addEventListener("live:migration.waves", function (event) {
    var data = event.detail.data;
    var card = document.querySelector('.wave-card[data-wave-id="' + data.id + '"]');
    if (!card) return;
    var percent = Math.round(data.percent);
    var bar = card.querySelector('[role="progressbar"]');
    bar.setAttribute("aria-valuenow", percent);
    bar.querySelector(".progress-done").style.width = percent + "%";
    card.querySelector('[data-role="percent"]').textContent = percent;
    card.querySelector('[data-role="total"]').textContent = data.total;
    var state = card.querySelector('[data-role="state"]');
    state.textContent = data.state.charAt(0).toUpperCase() + data.state.slice(1);
    state.className = "badge state-" + data.state;
  });
})();
