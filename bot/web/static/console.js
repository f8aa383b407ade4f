/* Estu staff console: progressive enhancement only — every page works without this file.
   - <form data-confirm="question"> asks before submitting;
   - submit buttons are disabled after a submit (no double posts), re-enabled when coming back;
   - EstuConsole.csrf() / EstuConsole.post(url, data) for pages that call the server from script
     (the token is in <meta name="csrf-token">, sent as the X-CSRF-Token header). */
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function post(url, data) {
    var body = data instanceof FormData ? data : new URLSearchParams(data || {});
    return fetch(url, {method: "POST", body: body, credentials: "same-origin",
                       headers: {"X-CSRF-Token": csrf()}});
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.method.toLowerCase() === "post") {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    }
  });

  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[type=submit][disabled]").forEach(function (b) { b.disabled = false; });
  });

  window.EstuConsole = {csrf: csrf, post: post};
})();
