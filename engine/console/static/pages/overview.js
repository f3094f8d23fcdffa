// The overview's charts: uPlot over the JSON block the page carries (no inline script: the CSP).
"use strict";

(function () {
  const palette = { blue: "#2456c7", red: "#b3261e", green: "#1d7a46", amber: "#a35c00" };

  function line(label, colour, fill) {
    return { label, stroke: colour, width: 2, fill: fill ? colour + "22" : undefined, points: { show: false } };
  }

  const charts = {
    requests: (d) => [[d.times, d.requests, d.errors], [line("Requests", palette.blue, true), line("Errors", palette.red, true)]],
    tokens: (d) => [[d.times, d.prompt_tokens, d.completion_tokens], [line("Prompt", palette.blue, true), line("Completion", palette.green, true)]],
    cost: (d) => [[d.times, d.cost], [line("Cost", palette.amber, true)]],
    latency: (d) => [[d.times, d.latency_p50, d.latency_p95], [line("p50 ms", palette.blue, false), line("p95 ms", palette.red, false)]],
  };

  function draw(node, data) {
    node.querySelectorAll("[data-chart]").forEach((box) => {
      const make = charts[box.dataset.chart];
      if (!make || typeof uPlot === "undefined") return;
      const [values, series] = make(data);
      const options = {
        width: Math.max(320, box.clientWidth),
        height: 220,
        series: [{}, ...series],
        axes: [{}, { size: 60 }],
        scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        legend: { live: true },
      };
      box.replaceChildren();
      box.plot = new uPlot(options, values, box);
    });
  }

  window.turnoutPages = window.turnoutPages || {};
  window.turnoutPages.overview = function (node) {
    const source = document.getElementById("overview-data");
    if (!source) return;
    const data = JSON.parse(source.textContent);
    draw(node, data);
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        node.querySelectorAll("[data-chart]").forEach((box) => {
          if (box.plot) box.plot.setSize({ width: Math.max(320, box.clientWidth), height: 220 });
        });
      }, 150);
    });
  };
})();
