// fedgate setup portal: the live provisioning check. Polls /setup/scim/activity for SCIM
// requests after the last one shown and appends their narration (HTML rendered and escaped by
// the server). Loaded as a file: the portal's CSP allows scripts from this origin only. Without
// it, the page still shows the requests as of its loading, with a Refresh link.
(function () {
  "use strict";
  var feed = document.getElementById("scim-feed");
  if (!feed || !window.fetch) return;
  var list = document.getElementById("scim-lines");
  var milestones = document.getElementById("scim-milestones");
  var empty = document.getElementById("scim-empty");
  var state = document.getElementById("scim-live-state");
  var cursor = feed.getAttribute("data-cursor") || "";
  var vendor = feed.getAttribute("data-vendor") || "generic";
  var delay = 2000;
  if (state) state.textContent = "Listening for requests…";
  function poll() {
    var url = "/setup/scim/activity?vendor=" + encodeURIComponent(vendor) +
      (cursor ? "&after=" + encodeURIComponent(cursor) : "");
    fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { if (state) state.textContent = "Your setup session has ended: reload the page."; return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (j) {
        if (!j) { delay = Math.min(delay * 2, 30000); return; }
        delay = 2000;
        if (j.html) {
          if (empty) empty.hidden = true;
          list.insertAdjacentHTML("beforeend", j.html);
        }
        if (j.milestones_html && milestones) milestones.innerHTML = j.milestones_html;
        if (j.cursor) cursor = j.cursor;
        if (state) state.textContent = "Listening for requests… (checked " + new Date().toLocaleTimeString() + ")";
      })
      .catch(function () { delay = Math.min(delay * 2, 30000); })
      .then(function () { setTimeout(poll, delay); });
  }
  setTimeout(poll, delay);
})();
