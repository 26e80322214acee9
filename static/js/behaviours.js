/*
 * Small page behaviours declared in HTML, so that templates carry no inline handlers
 * (the Content-Security-Policy allows no inline script):
 *   <button data-print>            prints the page
 *   <form data-confirm="Sure?">    asks before submitting
 *   <select data-autosubmit>       submits its form when changed
 */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
  document.addEventListener("submit", function (event) {
    var question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("[data-autosubmit]") && field.form) field.form.submit();
  });
})();
