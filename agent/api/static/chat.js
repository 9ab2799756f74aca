// The ops chat panel: posts messages to /v1/chat with the session's CSRF token and shows
// the conversation. Replies are plain text (textContent), never HTML.
(function () {
  "use strict";
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var log = document.getElementById("chat-log");
  var csrf = document.querySelector('meta[name="csrf-token"]');

  function add(role, text) {
    var item = document.createElement("div");
    item.className = "msg " + role;
    var who = document.createElement("strong");
    who.textContent = role === "user" ? "You" : "DecisionOps";
    var body = document.createElement("pre");
    body.textContent = text;
    item.appendChild(who);
    item.appendChild(body);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  fetch("/v1/chat", { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (data) { (data.messages || []).forEach(function (m) { add(m.role, m.content); }); })
    .catch(function () { /* an empty history is fine */ });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    add("user", text);
    input.value = "";
    fetch("/v1/chat", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
      body: JSON.stringify({ message: text })
    }).then(function (r) { return r.json(); }).then(function (data) {
      add("assistant", data.reply || (data.error && data.error.message) || "(no reply)");
    }).catch(function () { add("assistant", "Could not reach the server."); });
  });
})();
