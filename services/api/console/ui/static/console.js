// insightops console: live lists, a job's event stream, typed confirmations.
// No inline code anywhere (the Content-Security-Policy forbids it); every
// change is made through the DOM, never by writing HTML from data.
(function () {
  "use strict";
  var LIVE_MS = 5000;

  // Lists: the #live region is fetched again every 5 s, unless paused, the
  // tab is hidden, or the user is inside a form in it.
  function liveRegion() {
    var region = document.getElementById("live");
    var toggle = document.getElementById("live-toggle");
    var status = document.getElementById("live-status");
    if (!region || !toggle) return;
    var paused = false;
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.setAttribute("aria-pressed", paused ? "true" : "false");
      toggle.textContent = paused ? "Resume updates" : "Pause updates";
      status.textContent = paused ? "updates paused" : "updates every 5 s";
    });
    setInterval(function () {
      if (paused || document.hidden || region.contains(document.activeElement)) return;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) {
          if (res.redirected || !res.ok) throw new Error("status " + res.status);
          return res.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("live");
          if (fresh) region.replaceChildren.apply(region, Array.prototype.slice.call(fresh.childNodes).map(function (n) { return document.importNode(n, true); }));
          status.textContent = "updated " + new Date().toLocaleTimeString();
        })
        .catch(function () { status.textContent = "update failed; retrying"; });
    }, LIVE_MS);
  }

  // A job page follows the job's event stream until the job is final,
  // then reloads once to show the result, steps and audit events.
  function jobStream() {
    var box = document.getElementById("job");
    if (!box || box.getAttribute("data-final") === "true" || !window.EventSource) return;
    var id = box.getAttribute("data-job-id");
    var bar = document.getElementById("job-progress");
    var pct = document.getElementById("job-pct");
    var state = document.getElementById("job-state");
    var step = document.getElementById("job-step");
    var note = document.getElementById("job-live");
    var timeline = document.getElementById("job-timeline");
    var lastStep = null;
    var es = new EventSource("/ui/jobs/" + encodeURIComponent(id) + "/events");
    es.addEventListener("job", function (ev) {
      var rec;
      try { rec = JSON.parse(ev.data); } catch (e) { return; }
      bar.value = rec.progress || 0;
      bar.textContent = (rec.progress || 0) + "%";
      pct.textContent = (rec.progress || 0) + "%";
      state.textContent = rec.state;
      state.className = "pill pill-" + rec.state;
      step.textContent = rec.step || "";
      if (timeline && rec.step && rec.step !== lastStep) {
        lastStep = rec.step;
        var li = document.createElement("li");
        li.textContent = new Date().toLocaleTimeString() + " " + rec.step + " (" + (rec.progress || 0) + "%)";
        timeline.appendChild(li);
      }
      if (["succeeded", "failed", "cancelled"].indexOf(rec.state) >= 0) {
        es.close();
        note.textContent = "finished: " + rec.state;
        box.setAttribute("data-final", "true");
        setTimeout(function () { location.reload(); }, 800);
      }
    });
    es.onerror = function () { note.textContent = "stream interrupted; reconnecting"; };
  }

  // Typed confirmations: the submit button stays disabled until the input
  // holds exactly the expected text (the server checks it again).
  function typedConfirm() {
    var inputs = document.querySelectorAll("input[data-confirm]");
    Array.prototype.forEach.call(inputs, function (input) {
      var button = input.form.querySelector("[data-confirm-button]");
      if (!button) return;
      // data-confirm-from names a select whose value is the text to type
      // (its empty value means "all"); otherwise data-confirm is.
      var from = document.getElementById(input.getAttribute("data-confirm-from") || "");
      var want = function () { return from ? (from.value || "all") : input.getAttribute("data-confirm"); };
      var check = function () { button.disabled = input.value !== want(); };
      input.addEventListener("input", check);
      if (from) from.addEventListener("change", check);
      check();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveRegion();
    jobStream();
    typedConfirm();
  });
})();
