// Progressive enhancement only: every action also works without this file.
(function () {
  "use strict";

  // Copy buttons (hidden until JavaScript can make them work).
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select(); document.execCommand("copy"); done();
        });
      } else {
        field.select(); document.execCommand("copy"); done();
      }
    });
  });

  // Select all / none without a round trip (the buttons post a preset otherwise).
  document.querySelectorAll("[data-events] [data-select]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var on = button.getAttribute("data-select") === "all";
      button.closest("[data-events]").querySelectorAll("input[name=events]").forEach(function (box) {
        box.checked = on;
      });
    });
  });

  // Ask before destructive actions.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
