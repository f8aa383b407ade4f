/* Estu web chat: vanilla JS, no dependencies.
 *
 * - a random anonymous user id kept in localStorage (the same id after a reload, in every tab);
 * - the transcript kept in sessionStorage (survives a reload and a language switch in this tab, and is
 *   gone when the browser is closed, since it may hold an IIN or an address);
 * - every bot or citizen text is put in the page with textContent / text nodes, never as markup.
 */
(function () {
  "use strict";

  var API_MESSAGES = "api/v1/messages";        // relative: works behind a proxy under any prefix
  var API_NOTIFICATIONS = "api/v1/notifications";
  var KEY_USER = "estu.user_id";
  var KEY_BOT_LANG = "estu.bot_lang";          // the language last confirmed to the bot
  var KEY_HISTORY = "estu.history";
  var KEY_DRAFT = "estu.draft";
  var MAX_HISTORY = 200;
  var MAX_BODY_BYTES = 64 * 1024;              // the server refuses larger bodies (413)
  var PHONE = /^\+?[\d\s()\-]{3,20}$/;
  var SAFE_LINK = /^(https?:|tel:|mailto:)/i;
  var URL_IN_TEXT = /https?:\/\/[^\s<>"')\]]+[^\s<>"')\].,;:!?]/g;

  var config = JSON.parse(document.getElementById("estu-config").textContent);
  var lang = config.lang;
  var strings = config.strings || {};
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var sendButton = document.getElementById("send");
  var errorLine = document.getElementById("error");
  var busy = false;

  function t(msgid, args) {
    var text = strings[msgid] || msgid;
    if (args) {
      Object.keys(args).forEach(function (k) { text = text.split("{" + k + "}").join(String(args[k])); });
    }
    return text;
  }

  // -- storage (a private window or a full disk must not break the chat) ------------------------------
  function store(area) {
    try { var s = window[area]; s.setItem("estu.probe", "1"); s.removeItem("estu.probe"); return s; }
    catch (e) { var mem = {}; return { getItem: function (k) { return k in mem ? mem[k] : null; },
                                        setItem: function (k, v) { mem[k] = String(v); },
                                        removeItem: function (k) { delete mem[k]; } }; }
  }
  var local = store("localStorage");
  var session = store("sessionStorage");

  function randomId() {
    if (window.crypto && crypto.randomUUID) { return "web-" + crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function userId() {
    var id = local.getItem(KEY_USER);
    if (!id) { id = randomId(); local.setItem(KEY_USER, id); }
    return id;
  }

  function loadHistory() {
    try { var h = JSON.parse(session.getItem(KEY_HISTORY) || "[]"); return Array.isArray(h) ? h : []; }
    catch (e) { return []; }
  }
  var history = loadHistory();

  function remember(entry) {
    history.push(entry);
    if (history.length > MAX_HISTORY) { history = history.slice(-MAX_HISTORY); }
    try { session.setItem(KEY_HISTORY, JSON.stringify(history)); } catch (e) { /* full: keep it in memory */ }
  }

  // -- rendering ----------------------------------------------------------------------------------------
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  /* Plain text with http(s) addresses turned into links; everything else stays text. */
  function appendText(parent, text) {
    var last = 0;
    String(text).replace(URL_IN_TEXT, function (url, offset) {
      if (offset > last) { parent.appendChild(document.createTextNode(text.slice(last, offset))); }
      parent.appendChild(link(url, url));
      last = offset + url.length;
      return url;
    });
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  function link(href, label) {
    if (!SAFE_LINK.test(href)) { return document.createTextNode(label); }
    var a = el("a", null, label);
    a.href = href;
    if (/^https?:/i.test(href)) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
    return a;
  }

  function cardParagraph(paragraph, card) {
    return paragraph.indexOf(card.title) !== -1 && (!card.why || paragraph.indexOf(card.why) !== -1);
  }

  function renderCard(card) {
    var box = el("div", "card");
    box.appendChild(el("p", "card-kicker", t("Recommended channel")));
    box.appendChild(el("p", "card-title", card.title));
    if (card.why) { var why = el("p", "card-why"); appendText(why, card.why); box.appendChild(why); }
    if (card.contact && card.contact.length) {
      box.appendChild(el("p", "card-label", t("How to reach")));
      var ul = el("ul", "card-contact");
      card.contact.forEach(function (c) {
        var li = el("li");
        if (PHONE.test(c)) { li.appendChild(link("tel:" + c.replace(/[^\d+]/g, ""), c)); } else { appendText(li, c); }
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    if (card.alternative) { var alt = el("p", "card-alt"); appendText(alt, card.alternative); box.appendChild(alt); }
    return box;
  }

  function render(entry) {
    var mine = entry.who === "me";
    var item = el("div", "msg " + (mine ? "msg-me" : "msg-bot") + (entry.notification ? " msg-note" : ""));
    var who = el("p", "msg-who", mine ? t("You") : (entry.notification ? t("Notification") : t("Estu")));
    item.appendChild(who);
    var text = entry.text || "";
    if (entry.card) {
      // answers carry the card also as a text paragraph (for text-only channels): show it once, as the card
      var parts = text.split("\n\n");
      if (parts.length > 1 && cardParagraph(parts[0], entry.card)) { text = parts.slice(1).join("\n\n"); }
      item.appendChild(renderCard(entry.card));
    }
    if (text) {
      var body = el("div", "msg-text");
      appendText(body, text);
      item.appendChild(body);
    }
    if (entry.links && entry.links.length) {
      var links = el("ul", "msg-links");
      links.setAttribute("aria-label", t("Links"));
      entry.links.forEach(function (href) { var li = el("li"); li.appendChild(link(href, href.replace(/^tel:/i, ""))); links.appendChild(li); });
      item.appendChild(links);
    }
    if (entry.buttons && entry.buttons.length) {
      var group = el("div", "msg-buttons");
      entry.buttons.forEach(function (b) {
        var button = el("button", "reply-button", b.label);
        button.type = "button";
        button.setAttribute("data-button", b.id);
        group.appendChild(button);
      });
      item.appendChild(group);
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function addBotReplies(replies, notification) {
    (replies || []).forEach(function (r) {
      var entry = { who: "bot", text: r.text, buttons: r.buttons || [], links: r.links || [], card: r.card || null };
      if (notification) { entry.notification = true; }
      remember(entry);
      render(entry);
    });
  }

  // -- errors -------------------------------------------------------------------------------------------
  function showError(message) {
    errorLine.textContent = message;
    errorLine.hidden = false;
  }

  function clearError() {
    errorLine.hidden = true;
    errorLine.textContent = "";
  }

  function errorFor(status) {
    if (status === 0) { return t("The server cannot be reached. Your message is kept; please try again."); }
    if (status === 413) { return t("The message is too long. Please shorten it and send again."); }
    return t("The server answered with an error ({status}). Your message is kept; please try again.", { status: status });
  }

  // -- talking to the server ----------------------------------------------------------------------------
  /* Resolves with the replies; rejects with {status} (0 = unreachable). */
  function post(payload) {
    payload.user_id = userId();
    payload.language = lang;
    payload.channel = "web";
    var body = JSON.stringify(payload);
    if (new Blob([body]).size > MAX_BODY_BYTES) { return Promise.reject({ status: 413 }); }
    return fetch(API_MESSAGES, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: body, credentials: "same-origin"
    }).then(function (resp) {
      if (!resp.ok) { throw { status: resp.status }; }
      return resp.json().then(function (data) { return data.replies || []; }, function () { throw { status: resp.status }; });
    }, function () { throw { status: 0 }; });
  }

  function setBusy(value) {
    busy = value;
    log.setAttribute("aria-busy", value ? "true" : "false");
    sendButton.setAttribute("aria-disabled", value ? "true" : "false");
  }

  function sendText(text) {
    if (busy) { return; }
    if (!text.trim()) { showError(t("Write a message first.")); input.focus(); return; }
    clearError();
    setBusy(true);
    var pending = render({ who: "me", text: text });
    pending.classList.add("msg-pending");
    var status = el("p", "msg-status", t("Sending…"));
    pending.appendChild(status);
    post({ text: text }).then(function (replies) {
      pending.classList.remove("msg-pending");
      pending.removeChild(status);
      remember({ who: "me", text: text });
      if (input.value === text) { input.value = ""; }
      session.removeItem(KEY_DRAFT);
      addBotReplies(replies);
    }, function (err) {
      log.removeChild(pending);      // not sent: it stays in the field, nothing is lost
      showError(errorFor(err.status));
    }).then(function () { setBusy(false); });
  }

  function pressButton(button) {
    if (busy) { return; }
    var id = button.getAttribute("data-button");
    clearError();
    setBusy(true);
    var label = button.textContent;
    post({ button: id }).then(function (replies) {
      remember({ who: "me", text: label });
      render({ who: "me", text: label });
      addBotReplies(replies);
      var m = /^lang:(kk|ru)$/.exec(id);
      if (m) {
        local.setItem(KEY_BOT_LANG, m[1]);
        if (m[1] !== lang) { window.location.search = "?lang=" + m[1]; return; }
      }
      input.focus();
    }, function (err) {
      showError(err.status === 0 ? t("The server cannot be reached. Please try again.")
                                 : t("The server answered with an error ({status}). Please try again.", { status: err.status }));
      button.focus();
    }).then(function () { setBusy(false); });
  }

  var polling = false;
  function poll() {
    if (polling || document.hidden) { return; }
    polling = true;
    fetch(API_NOTIFICATIONS + "?channel=web&user_id=" + encodeURIComponent(userId()), { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : { replies: [] }; })
      .then(function (data) { addBotReplies(data.replies, true); })
      .catch(function () { /* the next poll tries again; a failed send shows the error line */ })
      .then(function () { polling = false; });
  }

  // -- wiring -------------------------------------------------------------------------------------------
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendText(input.value);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText(input.value);
    }
  });

  input.addEventListener("input", function () {
    try { session.setItem(KEY_DRAFT, input.value); } catch (e) { /* ignore */ }
  });

  log.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-button]");
    if (button) { pressButton(button); }
  });

  document.getElementById("restart").addEventListener("click", function () {
    if (!window.confirm(t("Start a new conversation? The history on this device will be cleared."))) { return; }
    local.removeItem(KEY_USER);
    local.removeItem(KEY_BOT_LANG);
    session.removeItem(KEY_HISTORY);
    session.removeItem(KEY_DRAFT);
    history = [];
    while (log.firstChild) { log.removeChild(log.firstChild); }
    clearError();
    greet();
  });

  /* A new conversation (or a new tab): the bot's welcome, in the page's language. */
  function greet() {
    setBusy(true);
    var known = local.getItem(KEY_BOT_LANG);
    var first = known && known !== lang ? post({ button: "lang:" + lang }) : Promise.resolve([]);
    first.then(function () { return post({ text: "/help" }); }).then(function (replies) {
      local.setItem(KEY_BOT_LANG, lang);
      addBotReplies(replies);
    }, function (err) { showError(errorFor(err.status)); }).then(function () { setBusy(false); });
  }

  /* The page was opened in another language than the bot last used (the header's switch, or a link
     with ?lang=): tell the bot, which answers in that language from now on. */
  function syncLanguage() {
    setBusy(true);
    post({ button: "lang:" + lang }).then(function (replies) {
      local.setItem(KEY_BOT_LANG, lang);
      addBotReplies(replies);
    }, function (err) { showError(errorFor(err.status)); }).then(function () { setBusy(false); });
  }

  setBusy(false);
  history.forEach(render);
  var draft = session.getItem(KEY_DRAFT);
  if (draft && !input.value) { input.value = draft; }
  if (!history.length) { greet(); }
  else if (local.getItem(KEY_BOT_LANG) !== lang) { syncLanguage(); }
  poll();
  window.setInterval(poll, Math.max(5, config.poll || 20) * 1000);
  window.addEventListener("focus", poll);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
  window.EstuChat = { userId: userId, poll: poll };
}());
