/* minewatch report map: seasons of footprints and sites over the composites (Leaflet, offline). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("mw-data").textContent);
  var seasons = data.seasons;
  var COLOURS = {
    leaching_pond: {color: "#00506e", fillColor: "#00c8dc", fillOpacity: 0.85, weight: 1},
    cleared_land: {color: "#963c0a", fillColor: "#e67828", fillOpacity: 0.55, weight: 1}
  };
  var SITE = {color: "#c800c8", weight: 2, fillColor: "#ff00ff", fillOpacity: 0.08, dashArray: "4 3"};

  var nFeatures = 0;
  seasons.forEach(function (s) { nFeatures = Math.max(nFeatures, data.footprints[s].features.length); });
  var map = L.map("map", {preferCanvas: nFeatures > data.canvas_above, zoomSnap: 0.25, attributionControl: true});
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(data.attribution);
  L.control.scale({metric: true, imperial: false, maxWidth: 160}).addTo(map);
  map.fitBounds(data.bounds, {padding: [12, 12]});

  map.createPane("mw-context").style.zIndex = 150;  /* under the imagery (250) and the vectors (400) */
  L.geoJSON(data.context, {interactive: false, pane: "mw-context",
    style: {color: "#8a8a8a", weight: 1, fillColor: "#eeeae0", fillOpacity: 1}}).addTo(map);

  function esc(v) {
    return String(v === null || v === undefined ? "–" : v).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }
  function area(m2) { return m2 === null || m2 === undefined ? "–" : (m2 / 1e4).toFixed(2) + " ha (" + Math.round(m2) + " m²)"; }
  function when(s) { var d = data.dates[s] || []; return esc(s) + (d[0] ? " (" + esc(d[0]) + " – " + esc(d[1]) + ")" : ""); }

  function footprintPopup(p) {
    return "<b>" + esc((p.class_name || "").replace("_", " ")) + "</b><br>Area: " + area(p.area_m2) +
      "<br>Site: " + (p.site_id ? "#" + esc(p.site_id) : "none (outside any site)") +
      "<br>Confidence: " + (p.confidence_pct === null || p.confidence_pct === undefined ? "–" : esc(p.confidence_pct) + " %") +
      "<br>Season: " + when(p.period);
  }
  function sitePopup(p) {
    return "<b>Site #" + esc(p.site_id) + "</b><br>Ponds: " + esc(p.n_ponds) + "<br>Footprint: " + area(p.footprint_area_m2) +
      "<br>Extent: " + area(p.extent_area_m2) + "<br>Season: " + when(p.period);
  }

  var imageryPane = map.createPane("mw-imagery");
  imageryPane.style.zIndex = 250;
  var current = {index: -1, imagery: null, unseen: null, sites: null, footprints: null, detail: null};

  /* Geometry comes packed (integers of 10^-q degrees, first vertex absolute, then deltas); unpack once per use. */
  function unpack(fc) {
    if (fc.geojson) return fc.geojson;
    var k = Math.pow(10, -fc.q);
    function ring(a) {
      var out = [], x = 0, y = 0;
      for (var i = 0; i < a.length; i += 2) { x += a[i]; y += a[i + 1]; out.push([x * k, y * k]); }
      return out;
    }
    fc.geojson = {type: "FeatureCollection", features: fc.features.map(function (f) {
      var c = f.g.t === "Polygon" ? f.g.c.map(ring) : f.g.c.map(function (p) { return p.map(ring); });
      return {type: "Feature", properties: f.properties, geometry: {type: f.g.t, coordinates: c}};
    })};
    return fc.geojson;
  }

  /* The simplified copy carries only {i: index}; its properties are the full feature's. */
  function propsOf(s, f, detail) { return detail ? f.properties : data.footprints[s].features[f.properties.i].properties; }

  var cache = {};  /* season + level → Leaflet layer, built once: switching seasons back and forth stays fast */
  function footprintLayer(s, detail) {
    var key = s + (detail ? "|d" : "|l");
    if (!cache[key]) {
      cache[key] = L.geoJSON(unpack(detail ? data.footprints[s] : data.footprints_lo[s]), {
        style: function (f) {
          var p = propsOf(s, f, detail), st = COLOURS[p.class_name] || {color: "#444", weight: 1};
          return Object.assign({className: "mw-fp mw-" + p.class_name + (detail ? " mw-detail" : " mw-lo")}, st);
        },
        onEachFeature: function (f, layer) { layer.bindPopup(function () { return footprintPopup(propsOf(s, f, detail)); }); }
      });
    }
    return cache[key];
  }

  function drawFootprints() {
    var s = seasons[current.index];
    var detail = map.getZoom() >= data.detail_zoom;
    if (current.footprints && current.detail === detail) return;
    if (current.footprints) map.removeLayer(current.footprints);
    current.detail = detail;
    current.footprints = footprintLayer(s, detail).addTo(map);
  }

  function show(i) {
    i = Math.max(0, Math.min(seasons.length - 1, i | 0));
    var s = seasons[i];
    current.index = i;
    ["imagery", "unseen", "sites", "footprints"].forEach(function (k) { if (current[k]) { map.removeLayer(current[k]); current[k] = null; } });
    var img = data.imagery[s];
    if (img) {
      current.imagery = L.imageOverlay(img.url, img.bounds, {pane: "mw-imagery", className: "mw-imagery",
                                                             alt: "Sentinel-2 composite " + s}).addTo(map);
    }
    var gap = (data.unseen || {})[s];
    if (gap) {
      current.unseen = L.imageOverlay(gap.url, gap.bounds, {pane: "mw-imagery", className: "mw-unseen",
                                                            alt: "Not observed in " + s}).addTo(map);
    }
    current.sites = L.geoJSON(unpack(data.sites[s]), {
      style: function () { return Object.assign({className: "mw-site"}, SITE); },
      onEachFeature: function (f, layer) {
        layer.bindPopup(sitePopup(f.properties));
        layer.bindTooltip("#" + f.properties.site_id, {permanent: false, direction: "center", className: "mw-site-label"});
      }
    }).addTo(map);
    current.detail = null;
    drawFootprints();
    var fp = data.footprints[s].features.length, st = data.sites[s].features.length;
    document.getElementById("mw-season-label").textContent = s + (data.dates[s] && data.dates[s][0] ?
      " (" + data.dates[s][0] + " – " + data.dates[s][1] + ")" : "") + ": " + fp + " footprint polygon(s), " + st +
      " site(s)" + (img ? "" : " — no composite image for this season");
    slider.value = String(i);
  }

  var slider = document.getElementById("mw-season");
  slider.addEventListener("input", function () { show(+slider.value); });
  slider.addEventListener("change", function () { show(+slider.value); });
  map.on("zoomend", drawFootprints);

  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var d = L.DomUtil.create("div", "mw-legend");
    d.innerHTML = '<i style="background:#00c8dc"></i>Leaching pond<br><i style="background:#e67828"></i>Cleared land<br>' +
      '<i style="border:2px dashed #c800c8;background:none"></i>Mining site extent<br>' +
      '<i style="background:rgba(150,150,150,.67)"></i>Not observed (outside AOI / never clear)';
    return d;
  };
  legend.addTo(map);

  /* For tests and power users: what is drawn now. */
  window.minewatchMap = {
    map: map, seasons: seasons, show: show, bounds: data.bounds,
    drawn: function () {
      var n = {footprints: 0, sites: 0, imagery: current.imagery ? 1 : 0, unseen: current.unseen ? 1 : 0,
               season: seasons[current.index], detail: current.detail};
      if (current.footprints) current.footprints.eachLayer(function () { n.footprints++; });
      if (current.sites) current.sites.eachLayer(function () { n.sites++; });
      return n;
    }
  };
  show(seasons.length - 1);
})();
