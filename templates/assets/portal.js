// fedgate setup portal: copy buttons. Loaded as a file (the portal's CSP allows scripts from
// this origin only). Every page works without it; it only adds the copy buttons' behaviour.
(function () {
  "use strict";
  function copyText(text, button) {
    var done = function () {
      var old = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", old);
      button.textContent = button.getAttribute("data-copied") || "Copied";
      button.classList.add("copied");
      setTimeout(function () {
        button.textContent = old;
        button.classList.remove("copied");
      }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  }
  function fallback(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "absolute";
    ta.style.left = "-9999px";
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to do */ }
    document.body.removeChild(ta);
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-copy]") : null;
    if (!b) return;
    ev.preventDefault();
    var target = document.getElementById(b.getAttribute("data-copy"));
    if (target) copyText(target.value !== undefined && target.tagName === "INPUT" ? target.value : target.textContent, b);
  });
  // A metadata file chosen in <input type=file data-into=ID> is read into the textarea ID
  // (the form posts text; without JavaScript the admin pastes the XML).
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input.getAttribute || !input.getAttribute("data-into") || !input.files || !input.files[0]) return;
    var target = document.getElementById(input.getAttribute("data-into"));
    if (!target) return;
    var reader = new FileReader();
    reader.onload = function () { target.value = String(reader.result || ""); };
    reader.readAsText(input.files[0]);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var shown = document.querySelectorAll("button[data-copy], input[data-into]");
    for (var i = 0; i < shown.length; i++) shown[i].hidden = false;
  });
})();
