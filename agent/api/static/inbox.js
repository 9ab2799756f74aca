// Edit-then-approve: show the changes against the proposal and validate them through the
// API (the same checks the server runs on submit) before the form is sent. Vanilla JS,
// no external code; every value is written with textContent (never as HTML).
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  if (!form) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var result = document.getElementById("edit-result");
  var approval = form.getAttribute("data-approval");
  var validated = null;

  function value(input) {
    var raw = input.value;
    var type = input.getAttribute("data-type");
    if (type === "number") {
      var n = Number(raw);
      return raw.trim() !== "" && isFinite(n) ? n : raw;
    }
    if (type === "boolean") { return ["true", "1", "yes", "on"].indexOf(raw.trim().toLowerCase()) >= 0; }
    return raw;
  }

  function changes() {
    var out = {};
    form.querySelectorAll("input[data-step]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      var original = JSON.parse(input.getAttribute("data-original"));
      var current = value(input);
      if (current !== original) {
        var step = input.getAttribute("data-step");
        out[step] = out[step] || {};
        out[step][input.getAttribute("data-arg")] = current;
      }
    });
    return out;
  }

  function show(lines, isError) {
    result.textContent = "";
    result.className = isError ? "diff error" : "diff";
    result.setAttribute("role", isError ? "alert" : "status");
    var list = document.createElement("ul");
    lines.forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    });
    result.appendChild(list);
  }

  function check() {
    var wanted = changes();
    var body = JSON.stringify({ arguments: wanted });
    return fetch("/v1/approvals/" + encodeURIComponent(approval) + "/validate", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
      body: body
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (reply) {
      if (!reply.ok) {
        var err = (reply.data && reply.data.error) || { message: "validation failed" };
        show([err.message], true);
        if (err.field) {
          var parts = err.field.split(".");
          var input = document.getElementById("arg-" + parts[1] + "-" + parts[2]);
          if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
        }
        validated = null;
        return false;
      }
      var lines = reply.data.changes.map(function (c) {
        return c.step_id + "." + c.argument + ": " + JSON.stringify(c.before) + " → " + JSON.stringify(c.after);
      });
      show(lines.length ? lines : ["No changes: this approves the proposal as it is."], false);
      validated = body;
      return true;
    }).catch(function () {
      show(["Could not reach the server to check the changes."], true);
      return false;
    });
  }

  document.getElementById("edit-check").addEventListener("click", function () { check(); });
  form.addEventListener("submit", function (event) {
    if (validated !== null && validated === JSON.stringify({ arguments: changes() })) { return; }
    event.preventDefault();
    check().then(function (ok) { if (ok) { form.submit(); } });
  });
})();
