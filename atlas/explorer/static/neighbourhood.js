// The neighbourhood view: draws the server-pruned graph embedded in the page with cytoscape (from npm, served
// under /vendor). Nodes are coloured by layer, annotated features get a dark border; a click opens the feature.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
  var layers = Array.from(new Set(data.nodes.map(function (node) { return node.layer; }))).sort(function (a, b) { return a - b; });
  var elements = data.nodes.map(function (node) {
    return { data: { id: node.uid, label: node.uid.split("/").slice(-2).join("/"),
                     colour: palette[layers.indexOf(node.layer) % palette.length],
                     border: node.annotated ? 3 : 0, size: node.center ? 34 : 20 } };
  }).concat(data.edges.map(function (edge, index) {
    return { data: { id: "e" + index, source: edge.source, target: edge.target,
                     colour: edge.sign === "inhibitory" ? "#b42318" : "#1a7f37",
                     width: Math.min(1 + Math.abs(edge.d || 0), 6) } };
  }));
  var cy = cytoscape({
    container: document.getElementById("graph"),
    elements: elements,
    layout: { name: "concentric", concentric: function (node) { return node.data("size"); }, levelWidth: function () { return 1; } },
    style: [
      { selector: "node", style: { "background-color": "data(colour)", "border-width": "data(border)", "border-color": "#222",
                                   width: "data(size)", height: "data(size)", label: "data(label)", "font-size": 8 } },
      { selector: "edge", style: { "line-color": "data(colour)", width: "data(width)", "curve-style": "bezier",
                                   "target-arrow-shape": "triangle", "target-arrow-color": "data(colour)", opacity: 0.7 } }
    ]
  });
  cy.on("tap", "node", function (event) {
    window.location.href = "/features/" + event.target.id().split("/").map(encodeURIComponent).join("/");
  });
  window.atlasGraph = cy;
})();
