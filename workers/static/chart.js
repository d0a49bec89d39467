// Draws the overview's cost-per-model chart from the data-chart attribute of
// #chart. A static file, so the Content-Security-Policy needs no 'unsafe-inline'.
(function () {
  var el = document.getElementById('chart');
  if (!el) return;
  var d = JSON.parse(el.getAttribute('data-chart'));
  if (!window.uPlot || !d.models.length) {
    el.textContent = 'No spend in this range.';
    return;
  }
  var colors = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6', '#14b8a6'];
  var dollars = function (x) { return '$' + x.toFixed(2); };
  var opts = {
    width: Math.min(el.clientWidth || 900, 1160),
    height: 260,
    series: [{}].concat(d.models.map(function (m, i) {
      return {
        label: m,
        stroke: colors[i % colors.length],
        width: 2,
        value: function (u, v) { return v == null ? '' : dollars(v); }
      };
    })),
    axes: [{}, { values: function (u, vs) { return vs.map(dollars); } }]
  };
  new uPlot(opts, [d.x].concat(d.series), el);
})();
