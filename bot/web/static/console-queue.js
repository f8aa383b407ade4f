/* Estu staff console: live refresh of the operator pages (queue, conversation). Progressive enhancement only:
   without this file the pages work the same, with a "Refresh" link.

   - An element with data-live="URL" gets its content replaced by GET URL (an HTML fragment rendered by the
     server) every data-live-every milliseconds (default 5000) while the tab is visible. [data-live-status]
     shows when it was last updated. A failed request is retried with a growing pause; if the session has
     ended, polling stops and the status says so.
   - data-live-count="Header": the number in that response header is shown in the tab title, "(3) Queue".
   - data-scroll="bottom": the element is scrolled to the newest message (unless the user scrolled up).
   - data-state / data-owner: compared with the X-Estu-State / X-Estu-Owner headers; when the conversation
     has changed hands, [data-live-changed] is shown (the action forms on the page are out of date).
   - <a data-insert="text" data-target="textarea-id"> puts a canned reply into the reply box at the cursor
     instead of following the link (which, without script, reloads the page with the text filled in). */
(function () {
  "use strict";

  var lang = document.documentElement.getAttribute("lang") || "ru";
  var TEXT = {
    ru: {updated: "Обновлено в ", failed: "Нет связи с сервером, пробуем снова…",
         ended: "Сеанс завершён. Обновите страницу и войдите снова."},
    kk: {updated: "Жаңартылды: ", failed: "Сервермен байланыс жоқ, қайта көреміз…",
         ended: "Сеанс аяқталды. Бетті жаңартып, қайта кіріңіз."}
  };
  var say = TEXT[lang] || TEXT.ru;

  function clock() {
    var d = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  function live(box) {
    var url = box.getAttribute("data-live");
    var every = parseInt(box.getAttribute("data-live-every") || "5000", 10) || 5000;
    var countHeader = box.getAttribute("data-live-count");
    var scroll = box.getAttribute("data-scroll") === "bottom";
    var status = document.querySelector("[data-live-status]");
    var changed = document.querySelector("[data-live-changed]");
    var baseTitle = document.title;
    var last = null;
    var failures = 0;
    var stopped = false;
    var timer = null;

    if (scroll) { box.scrollTop = box.scrollHeight; }

    function setStatus(text) { if (status) { status.textContent = text; } }

    function schedule(delay) {
      if (stopped) { return; }
      window.clearTimeout(timer);
      timer = window.setTimeout(tick, delay);
    }

    function apply(html, response) {
      if (html !== last) {
        var open = [];
        box.querySelectorAll("details[open]").forEach(function (d) { open.push(d.className); });
        var stick = !scroll || nearBottom(box);
        last = html;
        box.innerHTML = html;
        box.querySelectorAll("details").forEach(function (d) {
          if (open.indexOf(d.className) >= 0) { d.open = true; }
        });
        if (scroll && stick) { box.scrollTop = box.scrollHeight; }
      }
      if (countHeader) {
        var n = parseInt(response.headers.get(countHeader) || "0", 10);
        document.title = n > 0 ? "(" + n + ") " + baseTitle : baseTitle;
      }
      var state = response.headers.get("X-Estu-State");
      if (changed && state !== null && (state !== box.getAttribute("data-state") ||
          (response.headers.get("X-Estu-Owner") || "") !== (box.getAttribute("data-owner") || ""))) {
        changed.hidden = false;
      }
      setStatus(say.updated + clock());
    }

    function tick() {
      if (document.hidden) { schedule(every); return; }
      fetch(url, {credentials: "same-origin", cache: "no-store", redirect: "manual",
                  headers: {"Accept": "text/html", "X-Requested-With": "fetch"}})
        .then(function (response) {
          if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
            stopped = true;
            setStatus(say.ended);
            return null;
          }
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text().then(function (html) { apply(html, response); });
        })
        .then(function () { failures = 0; schedule(every); })
        .catch(function () {
          failures += 1;
          setStatus(say.failed);
          schedule(Math.min(60000, every * Math.pow(2, failures)));
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { schedule(0); }
    });
    schedule(every);
  }

  function insertAtCursor(area, text) {
    var start = area.selectionStart, end = area.selectionEnd;
    if (typeof start !== "number") { start = end = area.value.length; }
    var before = area.value.slice(0, start), after = area.value.slice(end);
    var glue = before && !/\s$/.test(before) ? " " : "";
    area.value = before + glue + text + after;
    var pos = (before + glue + text).length;
    area.focus();
    area.setSelectionRange(pos, pos);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("[data-insert]") : null;
    if (!link) { return; }
    var area = document.getElementById(link.getAttribute("data-target") || "");
    if (!area) { return; }
    event.preventDefault();
    insertAtCursor(area, link.getAttribute("data-insert"));
    var hidden = document.getElementById("canned-id");
    if (hidden) { hidden.value = link.getAttribute("data-canned-id") || ""; }
  });

  document.querySelectorAll("[data-live]").forEach(live);
})();
