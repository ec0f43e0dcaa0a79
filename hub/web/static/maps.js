// The curated maps: Leaflet over the hub's own OGC API items (bbox-filtered, paged with
// `limit`, f=json). The district's municipalities are the base (a basemap only when the
// configuration names one on the hub); the form's filters act on the map at once; the view
// (zoom/lat/lon) is kept in the address (#karte=…) so it can be shared. The list below the
// map is the same features rendered on the server; the page works without this file.
// A place page loads Leaflet only when asked ("Karte anzeigen"): its first load stays small.
"use strict";
(function () {
  var el = document.getElementById("map");
  if (!el || !window.fetch) { return; }
  if (window.L) { startHubMap(); return; }
  var show = document.getElementById("show-map");
  if (!show || !el.dataset.leafletJs) { return; }
  show.hidden = false;
  show.addEventListener("click", function () {
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = el.dataset.leafletCss;
    document.head.appendChild(css);
    var script = document.createElement("script");
    script.src = el.dataset.leafletJs;
    script.onload = function () { show.hidden = true; el.hidden = false; startHubMap(); el.focus(); };
    document.head.appendChild(script);
  });
})();

function startHubMap() {
  var el = document.getElementById("map"), legend = document.getElementById("map-legend");
  el.hidden = false;  // without JavaScript the page shows the list alone
  if (legend) { legend.hidden = false; }
  var kind = el.dataset.kind, form = document.getElementById("map-filters");
  var map = L.map(el, { keyboard: true, zoomSnap: 0.5, maxZoom: 18 });
  map.attributionControl.setPrefix("Leaflet");
  map.attributionControl.addAttribution(el.dataset.attribution);
  L.control.scale({ imperial: false, position: "topright" }).addTo(map);
  if (el.dataset.basemapUrl) {
    L.tileLayer(el.dataset.basemapUrl, { attribution: el.dataset.basemapAttribution }).addTo(map);
  }
  var base = null, features = [], shares = {};
  // the care locations are clustered (Leaflet.markercluster, vendored): a cluster is a marker
  // like the others, reached with Tab, and Enter (or a click) zooms into it
  var layer = (kind === "care" && L.markerClusterGroup ? L.markerClusterGroup({
    animate: false, showCoverageOnHover: false, maxClusterRadius: 40,
    iconCreateFunction: function (cluster) {
      var n = cluster.getChildCount();
      return L.divIcon({ className: "map-cluster", iconSize: [36, 36],
        html: "<span>" + n + "</span><span class=\"visually-hidden\"> " +
              escape(el.dataset.labelCluster.replace("{count}", n)) + "</span>" });
    }
  }) : L.layerGroup()).addTo(map);

  function percent(value) {
    return value === null || value === undefined ? "–" :
      Number(value).toLocaleString(document.documentElement.lang, { maximumFractionDigits: 1 }) + " %";
  }
  function text(value) { return value === null || value === undefined ? "–" : String(value); }
  function escape(value) {
    var span = document.createElement("span");
    span.textContent = text(value);
    return span.innerHTML;
  }

  // every feature of a collection within `bbox`, following the `next` links
  function items(url, bbox, extra) {
    var found = [];
    function page(next) {
      return fetch(next, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (body) {
          found = found.concat(body.features || []);
          var link = (body.links || []).filter(function (l) { return l.rel === "next"; })[0];
          return link ? page(link.href) : found;
        });
    }
    var query = "?f=json&limit=1000" + (bbox ? "&bbox=" + bbox.join(",") : "") + (extra || "");
    return page(url + query);
  }

  function filters() {
    var data = new FormData(form);
    return { stufe: data.get("stufe") || "1000", art: data.get("art") || "",
             typ: data.get("typ") || "", minKw: parseFloat(data.get("min_kw") || "") };
  }

  function shareClass(share) {
    return share === null || share === undefined ? -1 : share >= 95 ? 3 : share >= 80 ? 2 : share >= 50 ? 1 : 0;
  }

  function drawBroadband() {
    var level = filters().stufe;
    base.eachLayer(function (shape) {
      var row = shares[shape.feature.properties.ags] || {};
      var share = row["anteil_" + level];
      var cls = shareClass(share);
      shape.setStyle({ fillOpacity: [0.1, 0.35, 0.6, 0.85][cls] || 0,
                       fillColor: "#0b5394", color: "#333", weight: 1 });
      shape.unbindTooltip();
      if (share !== undefined && share !== null) {
        shape.bindTooltip(Math.round(share) + " %", { permanent: true, direction: "center", className: "share-label" });
      }
      shape.bindPopup("<strong>" + escape(shape.feature.properties.name) + "</strong><br>≥ 1000 Mbit/s: " +
        escape(percent(row.anteil_1000)) + "<br>≥ 100 Mbit/s: " + escape(percent(row.anteil_100)) + "<br>" +
        escape(el.dataset.labelHouseholds) + ": " + escape(row.haushalte) + "<br>" +
        escape(el.dataset.labelConstruction) + ": " + escape(row.haushalte_im_bau) + "<br>" +
        escape(el.dataset.labelPlanned) + ": " + escape(row.haushalte_geplant));
    });
  }

  var SYMBOLS = JSON.parse(el.dataset.symbols || "{}");
  function slug(type) { return String(type).normalize("NFD").replace(/[^a-z0-9]/gi, "").toLowerCase(); }

  function drawPoints() {
    var f = filters();
    layer.clearLayers();
    features.forEach(function (feature) {
      var p = feature.properties, c = feature.geometry && feature.geometry.coordinates;
      if (!c || feature.geometry.type !== "Point") { return; }
      if (kind === "care" && f.art && p.art !== f.art) { return; }
      if (kind === "mobility" && f.typ && p.typ !== f.typ) { return; }
      if (kind === "mobility" && !isNaN(f.minKw) && !((p.leistung_kw || 0) >= f.minKw)) { return; }
      var type = kind === "care" ? p.art : p.typ;
      var symbol = kind === "care" ? "+" : (SYMBOLS[p.typ] || "•");
      var marker = L.marker([c[1], c[0]], {
        title: (p.name || type) + " (" + type + ")", alt: type, keyboard: true,
        icon: L.divIcon({ className: "map-symbol symbol-" + slug(type),
                          html: symbol, iconSize: [24, 24] }) });
      var lines = ["<strong>" + escape(p.name || type) + "</strong>", escape(type)];
      if (kind === "care") {
        lines.push(escape([p.strasse, p.hausnummer].filter(Boolean).join(" ")) + ", " + escape(p.plz) + " " + escape(p.ort));
        if (p.telefon) { lines.push(escape(p.telefon)); }
      } else if (p.leistung_kw) {
        lines.push(escape(el.dataset.labelPower) + ": " + escape(p.leistung_kw) + " kW");
      }
      marker.bindPopup(lines.join("<br>"));
      marker.feature = feature;
      layer.addLayer(marker);
    });
    el.dataset.shown = String(layer.getLayers().length);
  }

  function draw() { if (kind === "broadband") { if (base) { drawBroadband(); } } else { drawPoints(); } }

  function viewFromHash() {
    var m = /karte=([\d.]+)\/(-?[\d.]+)\/(-?[\d.]+)/.exec(location.hash);
    if (m) { map.setView([parseFloat(m[2]), parseFloat(m[3])], parseFloat(m[1])); return true; }
    return false;
  }
  map.on("moveend", function () {
    var c = map.getCenter();
    history.replaceState(null, "", location.pathname + location.search + "#karte=" +
      map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5));
  });

  // a place page: the municipality's boundary and the nearest answers (/api/orte/{slug})
  function drawPlace() {
    var ags = encodeURIComponent(el.dataset.ags);
    items(el.dataset.base, null, "&ags=" + ags).then(function (shapes) {
      base = L.geoJSON({ type: "FeatureCollection", features: shapes },
        { style: { color: "#0a3a60", weight: 3, fillOpacity: 0.08 }, interactive: false }).addTo(map);
      if (!viewFromHash()) { map.fitBounds(base.getBounds()); }
      return fetch(el.dataset.answers, { credentials: "same-origin" });
    }).then(function (r) { return r.ok ? r.json() : Promise.reject(r); }).then(function (body) {
      var answers = body.answers || {}, found = [];
      ((answers.care || {}).nearest || []).forEach(function (i) { found.push([i, "+", "care"]); });
      var categories = (answers.mobility || {}).categories || {};
      Object.keys(categories).forEach(function (key) {
        (categories[key].nearest || []).forEach(function (i) { found.push([i, SYMBOLS[i.type] || "•", i.type]); });
      });
      found.forEach(function (entry) {
        var item = entry[0];
        if (item.lon === null || item.lat === null || item.lon === undefined) { return; }
        L.marker([item.lat, item.lon], {
          title: (item.name || item.type) + " (" + item.type + ")", alt: item.type, keyboard: true,
          icon: L.divIcon({ className: "map-symbol symbol-" + slug(entry[2]), html: entry[1], iconSize: [24, 24] })
        }).bindPopup("<strong>" + escape(item.name || item.type) + "</strong><br>" + escape(item.type) +
          "<br>" + escape((item.distance_m / 1000).toLocaleString(document.documentElement.lang,
            { maximumFractionDigits: 1 })) + " km").addTo(layer);
      });
      if (!location.hash) {  // the boundary and the nearest answers
        var bounds = base.getBounds();
        layer.eachLayer(function (m) { bounds.extend(m.getLatLng()); });
        map.fitBounds(bounds);
      }
      el.classList.add("loaded");
    });
  }

  if (kind === "place") { drawPlace(); return; }

  items(el.dataset.base).then(function (shapes) {
    base = L.geoJSON({ type: "FeatureCollection", features: shapes },
      { style: { color: "#333", weight: 1, fillOpacity: 0 }, interactive: kind === "broadband" })
      .addTo(map);
    var bounds = base.getBounds();
    if (!viewFromHash()) { map.fitBounds(bounds); }
    // the layer switcher (Leaflet's control: checkboxes, Enter on its button opens it)
    var overlays = {};
    if (kind === "broadband") {  // the percentage labels can be hidden (e.g. to read a popup)
      var labels = L.layerGroup().addTo(map);
      labels.on("add", function () { el.classList.remove("no-labels"); });
      labels.on("remove", function () { el.classList.add("no-labels"); });
      overlays[escape(el.dataset.labelLabels)] = labels;
    } else {
      overlays[escape(el.dataset.labelBase)] = base;
      overlays[escape(el.dataset.labelLayer)] = layer;
    }
    L.control.layers(null, overlays, { collapsed: window.innerWidth < 640 }).addTo(map);
    if (!el.dataset.layer) { return null; }
    var box = el.dataset.bbox ? el.dataset.bbox.split(",") : null;
    return items(el.dataset.layer, kind === "broadband" ? null : box);
  }).then(function (found) {
    if (!found) { return; }
    if (kind === "broadband") {
      found.forEach(function (f) { shares[f.properties.ags] = f.properties; });
    } else {
      features = found;
    }
    draw();
    el.classList.add("loaded");
  });

  // the place search above the map (/api/orte/suche): moves the map to the municipality;
  // without JavaScript the form leads to the place search page
  var placeForm = document.getElementById("map-place");
  if (placeForm) {
    var placeStatus = document.getElementById("map-place-status");
    placeForm.addEventListener("submit", function (event) {
      var q = new FormData(placeForm).get("q") || "";
      if (!base || !String(q).trim()) { return; }
      event.preventDefault();
      fetch("/api/orte/suche?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { matches: [] }; })
        .then(function (body) {
          var match = (body.matches || [])[0], bounds = null;
          if (match) {
            base.eachLayer(function (shape) {
              if (match.ags && String(shape.feature.properties.ags || "").indexOf(match.ags.slice(0, 8)) === 0) {
                bounds = bounds ? bounds.extend(shape.getBounds()) : L.latLngBounds(shape.getBounds().getSouthWest(), shape.getBounds().getNorthEast());
              }
            });
          }
          if (bounds) {
            map.fitBounds(bounds);
            placeStatus.textContent = placeStatus.dataset.labelFound.replace("{place}", match.name);
            el.dataset.place = match.slug;
          } else {
            placeStatus.textContent = placeStatus.dataset.labelNone.replace("{query}", q);
          }
        });
    });
  }

  if (form) {
    form.addEventListener("change", function () {
      draw();
      var params = new URLSearchParams(new FormData(form));
      history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
      fetch(form.action + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById("map-list"), old = document.getElementById("map-list");
          if (fresh && old) { old.innerHTML = fresh.innerHTML; old.dataset.count = fresh.dataset.count; }
        });
    });
  }
}
