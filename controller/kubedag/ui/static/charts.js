// kubedag UI charts, drawn by Chart.js (vendored, static/vendor/chart.umd.min.js): the Gantt chart of a run and
// the run duration chart. The page embeds the data (views.gantt_data / views.durations_data) as JSON.
(function () {
  "use strict";
  function fmt(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (Math.abs(seconds) < 10) return (Math.round(seconds * 100) / 100) + "s";  // sub-second tries stay readable
    var s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
  }
  function css(name) { return getComputedStyle(document.body).getPropertyValue(name).trim(); }
  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.getElementById("chart"), holder = document.getElementById("chart-data");
    if (!canvas || !holder || !window.Chart) return;
    var data = JSON.parse(holder.textContent);
    if (!data) return;
    Chart.defaults.color = css("--fg"); Chart.defaults.borderColor = css("--line");
    var wrap = canvas.parentElement;
    if (canvas.dataset.kind === "gantt") {
      wrap.style.height = Math.max(160, 26 * data.tasks.length + 70) + "px";
      var queued = data.bars.filter(function (b) { return b.queued !== null && b.queued < b.start; });
      new Chart(canvas, {
        type: "bar",
        data: {labels: data.tasks, datasets: [
          {label: "queued", data: queued.map(function (b) { return {y: b.task, x: [b.queued, b.start], bar: b}; }),
           backgroundColor: "rgba(128,128,128,0.35)", grouped: false, barPercentage: 0.5},
          {label: "tries", data: data.bars.map(function (b) { return {y: b.task, x: [b.start, b.end], bar: b}; }),
           backgroundColor: data.bars.map(function (b) { return b.color; }), borderColor: "#0006", borderWidth: 1,
           grouped: false, barPercentage: 0.8}]},
        options: {indexAxis: "y", maintainAspectRatio: false, animation: false,
          scales: {x: {type: "linear", min: 0, title: {display: true, text: "seconds from the run's start"},
                       ticks: {callback: fmt}}},
          plugins: {legend: {display: false}, tooltip: {callbacks: {label: function (ctx) {
            var b = ctx.raw.bar;
            return b.task + " try " + b.try + " (" + b.state + "): " + (ctx.datasetIndex === 0
              ? "queued " + fmt(b.start - b.queued) : fmt(b.start) + " → " + fmt(b.end) + ", " + fmt(b.end - b.start));
          }}}}}
      });
    } else {
      wrap.style.height = "420px";
      new Chart(canvas, {
        type: "bar",
        data: {labels: data.runs.map(function (r) { return r.label; }), datasets: [
          {label: "duration", data: data.runs.map(function (r) { return r.duration; }),
           backgroundColor: data.runs.map(function (r) { return r.color; }), borderColor: "#0006", borderWidth: 1}]},
        options: {maintainAspectRatio: false, animation: false,
          scales: {y: {beginAtZero: true, title: {display: true, text: "run duration"}, ticks: {callback: fmt}}},
          plugins: {legend: {display: false}, tooltip: {callbacks: {label: function (ctx) {
            var r = data.runs[ctx.dataIndex];
            return r.run_id + " (" + r.run_type + ", " + r.state + "): " + fmt(r.duration) +
              (r.queued !== null ? ", queued " + fmt(r.queued) : "");
          }}}}}
      });
    }
  });
})();
