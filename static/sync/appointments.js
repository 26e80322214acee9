/*
 * The appointments table follows the live events: an appointment processed or a prior
 * verified re-fetches the table (its patient column depends on the viewer's rights, so
 * the event carries no HTML), at most once a second.
 */
(function () {
  "use strict";
  var pending = null;

  function refresh() {
    var region = document.getElementById("appointments");
    if (!region) return;
    fetch(region.dataset.refreshUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) region.innerHTML = html; });
  }

  document.addEventListener("live:migration.appointments", function () {
    if (pending) return;
    pending = setTimeout(function () { pending = null; refresh(); }, 1000);
  });
})();
