// CallTrace web app: the few behaviours a page needs beyond HTML. No framework, no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // "Copy link" beside a new share link.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      var said = button.parentElement.querySelector(".copied");
      field.select();
      var done = function () { if (said) { said.textContent = "Copied."; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });
  // A transcript line's time plays the recording from there.
  var player = document.getElementById("player");
  document.querySelectorAll("button[data-seek]").forEach(function (button) {
    if (!player) { button.disabled = true; return; }
    button.addEventListener("click", function () {
      var parts = button.dataset.seek.split(":").map(Number);
      var seconds = parts.reduce(function (total, part) { return total * 60 + part; }, 0);
      player.currentTime = seconds;
      player.play();
    });
  });
});
