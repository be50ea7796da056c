// Fleetvault BUI live updates: an element with data-events="URL" listens to
// that Server-Sent Events stream of job progress and fills its descendants
// that carry data-field="name". Without JavaScript the page still shows the
// state as of its loading, and a reload refreshes it.
(function () {
  "use strict";
  function fmtDur(ns) {
    var s = Math.round(ns / 1e9);
    if (s <= 0) { return "-"; }
    var m = Math.floor(s / 60);
    return m > 0 ? m + " min " + (s % 60) + " s" : s + " s";
  }
  function fill(root, p) {
    var counts = p.counts || {};
    var parts = [];
    Object.keys(counts).sort().forEach(function (k) { parts.push(k + ": " + counts[k]); });
    var values = {
      state: p.state, done: String(p.done), total: String(p.total),
      rate: (p.devices_per_s || 0).toFixed(1) + " devices/s",
      eta: fmtDur(p.eta_ns || 0), counts: parts.join(", ") || "none yet",
      reason: p.reason || ""
    };
    root.querySelectorAll("[data-field]").forEach(function (el) {
      var k = el.getAttribute("data-field");
      if (k === "bar") { el.max = p.total || 1; el.value = p.done; return; }
      if (k === "state") { el.className = "badge st-" + p.state; }
      if (values[k] !== undefined) { el.textContent = values[k]; }
    });
  }
  document.querySelectorAll("[data-events]").forEach(function (root) {
    if (!window.EventSource) { return; }
    var es = new EventSource(root.getAttribute("data-events"));
    es.addEventListener("progress", function (e) { fill(root, JSON.parse(e.data)); });
    es.addEventListener("end", function (e) {
      fill(root, JSON.parse(e.data));
      es.close();
      root.setAttribute("data-ended", "true");
      var done = root.querySelector("[data-ended-note]");
      if (done) { done.hidden = false; }
    });
    es.onerror = function () { es.close(); };
  });
})();
