/*
 * The what-if page: each slider shows its value as it moves (htmx redraws the results
 * from the server), and a wave's progress event redraws them with the current sliders.
 */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("what-if");
    if (!form) return;
    form.addEventListener("input", function (event) {
      var output = form.querySelector('output[data-for="' + event.target.id + '"]');
      if (!output) return;
      var zero = output.dataset.zero;
      output.textContent = zero && event.target.value === "0" ? zero : event.target.value;
    });
    document.addEventListener("live:migration.waves", function () {
      if (window.htmx) window.htmx.trigger(form, "refresh");
    });
  });
})();
