// Draws the overview's cost-per-model chart from the data-chart attribute of
// #chart: daily bars stacked per model. A static file, so the
// Content-Security-Policy needs no 'unsafe-inline'.
(function () {
  var el = document.getElementById('chart');
  if (!el) return;
  var d = JSON.parse(el.getAttribute('data-chart'));
  if (!window.uPlot || !d.models.length) {
    el.textContent = 'No spend in this range.';
    return;
  }
  // A model keeps its colour whatever the range: the colour comes from its
  // name, not from its position in this range's list.
  var palette = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2',
    '#db2777', '#65a30d', '#4b5563', '#9333ea', '#ea580c', '#0d9488'];
  var colour = function (name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return palette[h % palette.length];
  };
  var dollars = function (x) {
    if (x == null) return '';
    if (x === 0 || x >= 0.01) return '$' + x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return '$' + x.toPrecision(2);
  };
  // Stacked: series i is drawn at the sum of models 0..i, tallest first so
  // each model's band shows; the legend shows the model's own amount.
  var sums = [];
  d.series.forEach(function (s, i) {
    sums.push(s.map(function (v, j) { return v + (i ? sums[i - 1][j] : 0); }));
  });
  var order = d.models.map(function (m, i) { return i; }).reverse();
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 48] }) : undefined;
  var day = function (s) { return s == null ? '' : new Date(s * 1000).toISOString().slice(0, 10); };
  var opts = {
    width: Math.max(Math.min(el.clientWidth || 900, 1160), 200),
    height: 260,
    scales: { x: { time: true } },
    legend: { live: true },
    series: [{ label: 'Day', value: function (u, v) { return day(v); } }].concat(order.map(function (i) {
      var m = d.models[i];
      return {
        label: m,
        stroke: colour(m),
        fill: colour(m),
        width: 1,
        paths: bars,
        points: { show: false },
        value: function (u, v, si, idx) { return idx == null ? '' : dollars(d.series[i][idx]); }
      };
    })),
    axes: [{}, { values: function (u, vs) { return vs.map(dollars); }, size: 70 }]
  };
  new uPlot(opts, [d.x].concat(order.map(function (i) { return sums[i]; })), el);
})();
