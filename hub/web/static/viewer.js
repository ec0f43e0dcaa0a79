// The map viewer of a geodataset (/karten/daten/{name}): Leaflet over the hub's own OGC API
// items of the current view (bbox, at most `data-limit` features, read page by page), fitted
// to the layer's extent. Points, lines and polygons are drawn by geometry type, coloured by
// the legend's column when the data has one — points also in the category's shape, as the
// legend draws it (never colour alone); a click (or Enter on a point) opens a popup with
// the attributes. The list below the map is the same layer, paged on the server: the page
// works without this file.
"use strict";
(function () {
  var el = document.getElementById("map");
  if (!el || !window.fetch || !window.L) { return; }
  el.hidden = false;
  var status = document.getElementById("map-status");
  var limit = parseInt(el.dataset.limit, 10) || 2000, FIRST = 250, PAGE = 1000, KEYBOARD_POINTS = 200;
  var values = JSON.parse(el.dataset.legendValues || "[]");
  var colours = JSON.parse(el.dataset.colours || "[]"), column = el.dataset.legendColumn;
  var shapes = JSON.parse(el.dataset.shapes || "[]");
  var map = L.map(el, { keyboard: true, zoomSnap: 0.5, maxZoom: 18 });
  map.attributionControl.setPrefix("Leaflet");
  map.attributionControl.addAttribution(el.dataset.attribution);
  L.control.scale({ imperial: false, position: "topright" }).addTo(map);
  if (el.dataset.basemapUrl) {
    L.tileLayer(el.dataset.basemapUrl, { attribution: el.dataset.basemapAttribution }).addTo(map);
  }
  var canvas = L.canvas({ padding: 0.2 }), layer = L.layerGroup().addTo(map), asked = null;
  if (el.dataset.base) {  // the district's municipalities beneath the layer
    fetch(el.dataset.base + "?f=json&limit=1000", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (body) {
        L.geoJSON(body, { renderer: canvas, interactive: false,
                          style: { color: "#6b7280", weight: 1, fillOpacity: 0 } }).addTo(map).bringToBack();
      });
  }

  function text(value) { return value === null || value === undefined ? "–" : String(value); }
  function escape(value) {
    var span = document.createElement("span");
    span.textContent = text(value);
    return span.innerHTML;
  }
  function category(props) { return column ? values.indexOf(text(props[column])) : 0; }
  function colour(props) {
    var i = category(props);
    return i >= 0 && colours[i] ? colours[i] : "#4a4a4a";
  }
  function shape(props) {
    var i = category(props);
    return i >= 0 && shapes[i] ? shapes[i] : shapes[0];
  }
  // a point of the canvas (many in view) drawn in its category's shape (an SVG path, -9…9)
  var ShapeMarker = L.CircleMarker.extend({
    _updatePath: function () {
      var renderer = this._renderer, ctx = renderer._ctx;
      if (!renderer._drawing || this._empty() || !window.Path2D) { return; }
      var scale = this._radius / 9, path = new Path2D(this.options.shape);
      ctx.save();
      ctx.translate(this._point.x, this._point.y);
      ctx.scale(scale, scale);
      ctx.fillStyle = this.options.fillColor;
      ctx.fill(path);
      ctx.lineWidth = this.options.weight / scale;
      ctx.strokeStyle = this.options.color;
      ctx.stroke(path);
      ctx.restore();
    }
  });
  function icon(props) {
    return "<svg viewBox=\"-10 -10 20 20\" width=\"20\" height=\"20\" focusable=\"false\"><path d=\"" +
      shape(props) + "\" fill=\"" + colour(props) + "\"/></svg>";
  }
  function popup(feature) {
    var props = feature.properties || {};
    return "<table class=\"popup-table\"><caption>" + escape(feature.id) + "</caption>" +
      Object.keys(props).map(function (k) {
        return "<tr><th scope=\"row\">" + escape(k) + "</th><td>" + escape(props[k]) + "</td></tr>";
      }).join("") + "</table>";
  }
  function say(message) { status.hidden = false; status.textContent = message; }

  // `markers`: few features in the view, so points are focusable markers (Enter opens the
  // popup); many are drawn on one canvas
  function draw(features, markers) {
    L.geoJSON({ type: "FeatureCollection", features: features }, {
      renderer: canvas,
      style: function (f) {
        var c = colour(f.properties || {});
        return /Polygon$/.test(f.geometry.type) ? { color: c, weight: 1, fillColor: c, fillOpacity: 0.35 }
          : { color: c, weight: 3 };
      },
      pointToLayer: function (f, latlng) {
        var props = f.properties || {};
        if (markers) {
          var name = props.name || props.bezeichnung || f.id;
          var marker = L.marker(latlng, { keyboard: true,
            title: text(name) + (column ? " (" + text(props[column]) + ")" : ""),
            icon: L.divIcon({ className: "data-point", html: icon(props), iconSize: [20, 20] }) });
          marker.on("add", function () { marker.getElement().dataset.id = text(f.id); });
          return marker;
        }
        return new ShapeMarker(latlng, { renderer: canvas, radius: column ? 6 : 4, color: "#333", weight: 1,
                                         fillColor: colour(props), fillOpacity: 0.9, shape: shape(props) });
      },
      onEachFeature: function (f, shape) { shape.bindPopup(popup(f), { maxWidth: 320, maxHeight: 260 }); }
    }).addTo(layer);
  }

  // the features of the current view, page by page, until `limit`
  function load() {
    if (asked) { asked.abort(); }
    var controller = window.AbortController ? new AbortController() : null;
    asked = controller;
    var b = map.getBounds(), shown = 0, matched = null, first = true;
    var box = [Math.max(-180, b.getWest()), Math.max(-90, b.getSouth()),
               Math.min(180, b.getEast()), Math.min(90, b.getNorth())].map(function (v) { return v.toFixed(6); });
    say(el.dataset.labelLoading);
    function page(url) {
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/geo+json" },
                          signal: controller ? controller.signal : undefined })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (body) {
          if (asked !== controller) { return; }
          if (first) { layer.clearLayers(); first = false; }
          if (matched === null) { matched = body.numberMatched; }
          var features = (body.features || []).slice(0, limit - shown);
          shown += features.length;
          draw(features, (matched === undefined ? shown : matched) <= KEYBOARD_POINTS);
          el.classList.add("loaded");
          el.dataset.shown = String(shown);
          var next = (body.links || []).filter(function (l) { return l.rel === "next"; })[0];
          if (next && shown < limit) {  // after a small first page (drawn early), larger ones
            return page(next.href.replace(/([?&]limit=)\d+/, "$1" + Math.min(PAGE, limit - shown)));
          }
          var message = el.dataset.labelShown.replace("{shown}", shown.toLocaleString(document.documentElement.lang))
            .replace("{matched}", (matched === undefined || matched === null ? shown : matched).toLocaleString(document.documentElement.lang));
          say(matched > shown ? message + " " + el.dataset.labelMore : message);
        });
    }
    page(el.dataset.items + "?f=json&limit=" + Math.min(FIRST, limit) + "&bbox=" + box.join(","))
      .catch(function (e) { if (!e || e.name !== "AbortError") { say(el.dataset.labelFailed); } });
  }

  var bbox = (el.dataset.bbox || "").split(",").map(parseFloat);
  var m = /karte=([\d.]+)\/(-?[\d.]+)\/(-?[\d.]+)/.exec(location.hash);
  if (m) {
    map.setView([parseFloat(m[2]), parseFloat(m[3])], parseFloat(m[1]));
  } else if (bbox.length === 4 && bbox.every(isFinite)) {
    map.fitBounds(bbox[0] === bbox[2] && bbox[1] === bbox[3]
      ? L.latLng(bbox[1], bbox[0]).toBounds(500) : [[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);
  } else {
    map.setView([51.5, 13.5], 9);
  }
  map.on("moveend", function () {
    var c = map.getCenter();
    history.replaceState(null, "", location.pathname + location.search + "#karte=" +
      map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5));
    load();
  });
  load();
})();
