// Keyboard shortcuts of the inbox (list and request pages). Every shortcut does what a
// link, checkbox or button on the page does: without JavaScript the page works the same
// with the mouse or Tab. No shortcut fires while the user types in a field or holds a
// modifier key. "?" opens the help (a <details> element, also usable without script).
(function () {
  "use strict";
  var help = document.getElementById("keys-help");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
  var current = -1;

  function typing(target) {
    return target && target.closest &&
      target.closest("input, textarea, select, [contenteditable]:not([contenteditable='false'])");
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) { window.location.assign(link.href); }
  }

  function move(delta) {
    if (!rows.length) { return; }
    if (current >= 0) {
      rows[current].classList.remove("current");
      rows[current].removeAttribute("aria-current");
    }
    current = current < 0 ? (delta > 0 ? 0 : rows.length - 1)
      : Math.min(rows.length - 1, Math.max(0, current + delta));
    var row = rows[current];
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("a.open");
    if (link) { link.focus(); }  // Enter opens it, as any focused link
  }

  function currentLink() {
    return current >= 0 ? rows[current].querySelector("a.open") : null;
  }

  function onList(key) {
    if (key === "j") { move(1); return true; }
    if (key === "k") { move(-1); return true; }
    if (key === "x") {
      if (current < 0) { move(1); }
      var box = current >= 0 ? rows[current].querySelector("input.select") : null;
      if (box) { box.checked = !box.checked; }
      return true;
    }
    if (key === "a") {
      var button = document.getElementById("bulk-approve");
      if (button && document.querySelector("input.select:checked")) { button.click(); }
      return true;
    }
    if (key === "r") {
      var link = currentLink();
      if (link) { window.location.assign(link.href + "#reject-form"); }
      return true;
    }
    return false;
  }

  function onRequest(key) {
    if (key === "j") { follow("next-request"); return true; }
    if (key === "k") { follow("prev-request"); return true; }
    if (key === "a") {
      var approve = document.getElementById("approve-next");
      if (approve) { approve.click(); }
      return true;
    }
    if (key === "r") {
      var reason = document.getElementById("reject-reason");
      if (reason) { reason.scrollIntoView({ block: "center" }); reason.focus(); }
      return true;
    }
    return false;
  }

  if (window.location.hash === "#reject-form") {  // "r" on the list lands here
    var reason = document.getElementById("reject-reason");
    if (reason) { reason.focus(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey ||
        typing(event.target)) { return; }
    if (event.key === "?") {
      if (help) { help.open = !help.open; }
      event.preventDefault();
      return;
    }
    if (event.key === "Escape" && help && help.open) { help.open = false; return; }
    var handled = document.getElementById("inbox-list") ? onList(event.key)
      : document.getElementById("approval-status") ? onRequest(event.key) : false;
    if (handled) { event.preventDefault(); }
  });
})();
