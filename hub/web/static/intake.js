// The workspace's "Daten" page: a small map of the first located rows of the preview
// (Leaflet, points from data-points) and the live progress of a run (polls the JSON twin of
// the run until it ends, then reloads the page to show the result). The page works without.
"use strict";
(function () {
  var el = document.getElementById("intake-map");
  if (el && window.L) {
    var points = JSON.parse(el.dataset.points || "[]");
    el.hidden = false;
    var map = L.map(el, { keyboard: true });
    map.attributionControl.setPrefix("Leaflet");
    var group = L.featureGroup(points.map(function (p) {
      return L.circleMarker([p[1], p[0]], { radius: 4, weight: 1 });
    })).addTo(map);
    map.fitBounds(group.getBounds().pad(0.1), { maxZoom: 14 });
  }
  var run = document.getElementById("intake-run");
  if (!run || !window.fetch) { return; }
  var bar = document.getElementById("intake-progress");
  var message = document.getElementById("intake-message");
  function poll() {
    fetch(run.dataset.poll, { credentials: "same-origin" }).then(function (r) {
      return r.json();
    }).then(function (state) {
      if (state.state !== "running" && state.state !== "queued") { window.location.reload(); return; }
      bar.value = state.progress;
      bar.textContent = Math.round(state.progress * 100) + " %";
      message.textContent = state.message;
      window.setTimeout(poll, 700);
    }).catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
