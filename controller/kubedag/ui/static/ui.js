// kubedag UI behaviour: dialogs, the grid's selection (mouse and keyboard), tooltips, the JSON check of the
// trigger form, and the graph laid out by dagre (vendored, static/vendor/dagre.min.js). No build step.
(function () {
  "use strict";
  var base = document.body.dataset.base || "";
  var STATES = ["queued", "running", "success", "restarting", "failed", "up_for_retry", "up_for_reschedule",
    "upstream_failed", "skipped", "removed", "scheduled", "deferred", "none"];  // views.STATE_CODES order
  var COLORS = {queued: "gray", running: "lime", success: "green", restarting: "violet", failed: "red",
    up_for_retry: "gold", up_for_reschedule: "turquoise", upstream_failed: "orange", skipped: "hotpink",
    removed: "lightgrey", scheduled: "tan", deferred: "mediumpurple", none: "white"};

  document.addEventListener("DOMContentLoaded", function () {
    var modal = document.getElementById("modal");
    document.body.addEventListener("htmx:afterSwap", function (e) {
      if (e.detail.target && e.detail.target.id === "modal-body" && !modal.open) modal.showModal();
      if (e.detail.target && e.detail.target.id === "modal-body") {
        var first = modal.querySelector("[autofocus]") || modal.querySelector("textarea, input:not([type=hidden]), button.primary");
        if (first) first.focus();
        checkJson(modal);
      }
    });
    document.body.addEventListener("htmx:afterSettle", reselect);
    modal.addEventListener("close", function () { document.getElementById("modal-body").innerHTML = ""; });
    document.body.addEventListener("htmx:configRequest", function (e) {
      // kd-background marks a fragment's own poll or lazy load; htmx passes hx-headers down to the buttons
      // inside it (a DAG row's pause and trigger, a backfill's cancel), whose refusals must open the dialog
      var own = e.detail.elt.getAttribute("hx-headers") || "";
      if (own.indexOf("kd-background") < 0) delete e.detail.headers["kd-background"];
    });
    document.addEventListener("click", function (e) {
      if (e.target.closest("[data-close]")) modal.close();
    });
    document.addEventListener("input", function (e) { if (e.target.matches("textarea[data-json]")) checkJson(e.target.form); });
    setupGrid();
    setupGraph();
    htmx.onLoad(function (root) {   // a live log swapped in (or in the first page): stream it
      var box = root.matches && root.matches("[data-stream]") ? root : root.querySelector && root.querySelector("[data-stream]");
      if (box) streamLog(box);
    });
    document.body.addEventListener("htmx:beforeCleanupElement", function (e) {  // a streamed log swapped away
      if (e.target.kdSource) e.target.kdSource.close();
    });
  });

  // ---------------------------------------------------------------- live log: server-sent events (stream.py)
  function streamLog(box) {
    if (box.dataset.streaming) return;
    box.dataset.streaming = "open";
    if (!window.EventSource) { pollLog(box); return; }
    var pre = box.querySelector("pre.log"), status = box.querySelector("[data-live]"), problem = box.querySelector("[data-problem]");
    var source = box.kdSource = new EventSource(box.dataset.stream);
    function gone() { if (document.body.contains(box)) return false; source.close(); return true; }
    function show(text, replace) {
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      if (replace) pre.textContent = text; else pre.appendChild(document.createTextNode(text));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    source.addEventListener("open", function () { if (!gone()) status.textContent = "live, streaming"; });
    source.addEventListener("reset", function (e) { if (!gone()) show(JSON.parse(e.data).text, true); });
    source.addEventListener("append", function (e) { if (!gone()) show(JSON.parse(e.data).text, false); });
    source.addEventListener("problem", function (e) {
      if (gone()) return;
      problem.textContent = JSON.parse(e.data).message; problem.hidden = false;
    });
    source.addEventListener("end", function (e) {
      source.close();
      var state = JSON.parse(e.data).state;
      status.textContent = "ended" + (state ? ": " + state : "");
      box.dataset.streaming = "ended";
      // the panel around it re-reads state, tries and why, the grid its states (both listen for kd-refresh)
      if (!gone()) htmx.trigger(document.body, "kd-refresh");
    });
    source.addEventListener("timeout", function () { source.close(); if (!gone()) pollLog(box); });
    source.onerror = function () { source.close(); if (!gone()) pollLog(box); };  // refused, dropped: poll instead
  }
  function pollLog(box) {  // the polled view (log.html with poll=1) refreshes itself every 2 s
    box.dataset.streaming = "polling";
    setTimeout(function () {
      if (document.body.contains(box)) {
        htmx.ajax("GET", box.dataset.poll, {target: box, swap: "outerHTML", headers: {"kd-background": "1"}});
      }
    }, 2000);
  }

  // ---------------------------------------------------------------- trigger form: conf must be a JSON object
  function checkJson(root) {
    var area = root && root.querySelector("textarea[data-json]");
    if (!area) return;
    var out = root.querySelector("[data-json-error]"), submit = root.querySelector("button[type=submit]"), msg = "";
    try {
      var v = JSON.parse(area.value || "{}");
      if (v === null || typeof v !== "object" || Array.isArray(v)) msg = "conf: must be a JSON object";
    } catch (err) { msg = "conf: not valid JSON (" + err.message + ")"; }
    if (out && (msg || !out.dataset.server)) out.textContent = msg;
    area.setAttribute("aria-invalid", msg ? "true" : "false");
    if (submit) submit.disabled = !!msg;
  }

  // ---------------------------------------------------------------- grid
  var selected = null;  // {task, run}
  function panel(dag, run, task) {
    htmx.ajax("GET", base + "/dags/" + encodeURIComponent(dag) + "/runs/" + encodeURIComponent(run) + "/tasks/" +
      encodeURIComponent(task), {target: "#panel", swap: "innerHTML"});
  }
  function cellInfo(td) {
    var tr = td.parentElement, table = td.closest("table");
    var th = table.tHead.rows[0].cells[td.cellIndex];
    return {task: tr.dataset.task, run: th.dataset.run, type: th.dataset.type, dag: table.parentElement.dataset.dag,
      state: STATES[td.className.charCodeAt(0) - 97] || "none"};
  }
  function select(td, open) {
    document.querySelectorAll("table.grid .sel").forEach(function (el) { el.classList.remove("sel"); });
    if (!td || td.classList.contains("z")) return;
    td.classList.add("sel"); td.parentElement.classList.add("sel");
    var info = cellInfo(td);
    selected = {task: info.task, run: info.run};
    td.scrollIntoView({block: "nearest", inline: "nearest"});
    if (open) panel(info.dag, info.run, info.task);
  }
  function reselect() {
    if (!selected) return;
    var table = document.querySelector("table.grid");
    if (!table) return;
    var row = table.querySelector('tr[data-task="' + CSS.escape(selected.task) + '"]');
    var ths = table.tHead.rows[0].cells, col = -1;
    for (var i = 1; i < ths.length; i++) if (ths[i].dataset.run === selected.run) col = i;
    if (row && col > 0) { row.cells[col].classList.add("sel"); row.classList.add("sel"); }
  }
  function setupGrid() {
    var tip = document.createElement("div");
    tip.id = "tip"; tip.hidden = true; document.body.appendChild(tip);
    var hovers = {}, hovered = null, hoverTimer = null;
    document.addEventListener("click", function (e) {
      var td = e.target.closest("table.grid td");
      if (td) select(td, true);
    });
    document.addEventListener("mouseover", function (e) {
      var td = e.target.closest("table.grid td");
      if (!td || td.classList.contains("z")) { tip.hidden = true; return; }
      var i = cellInfo(td), head = i.task + "\n" + i.run + " (" + i.type + ")\n" + (i.state === "none" ? "no status" : i.state);
      var key = [i.dag, i.run, i.task, i.state].join("\u0000");
      tip.textContent = head + "\n" + (hovers[key] || "…") + "\nclick for tries, log and why";
      tip.hidden = false; hovered = key;
      if (!hovers[key]) {               // try, times, duration and reason: fetched once per cell and state
        clearTimeout(hoverTimer);
        hoverTimer = setTimeout(function () {
          fetch(base + "/dags/" + encodeURIComponent(i.dag) + "/runs/" + encodeURIComponent(i.run) +
                "/tasks/" + encodeURIComponent(i.task) + "/hover", {credentials: "same-origin", headers: {"kd-background": "1"}})
            .then(function (r) { return r.status === 200 ? r.json() : null; })
            .then(function (data) {
              if (!data) return;
              var text = data.lines.join("\n");
              if (i.state !== "running") hovers[key] = text;     // a running one's duration grows
              if (hovered === key && !tip.hidden) tip.textContent = head + "\n" + text + "\nclick for tries, log and why";
            });
        }, 120);
      }
      var r = td.getBoundingClientRect();
      tip.style.left = Math.min(r.right + 8, window.innerWidth - 320) + "px"; tip.style.top = (r.bottom + 6) + "px";
    });
    document.addEventListener("keydown", function (e) {
      var table = e.target.closest && e.target.closest("table.grid");
      if (!table) return;
      var cur = table.querySelector("td.sel"), moves = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]};
      if (e.key === "Enter" && cur) { select(cur, true); e.preventDefault(); return; }
      if (!moves[e.key]) return;
      e.preventDefault();
      if (!cur) { var first = table.tBodies[0].rows[0]; select(first && first.cells[first.cells.length - 1], false); return; }
      var r = cur.parentElement.sectionRowIndex + moves[e.key][0], c = cur.cellIndex + moves[e.key][1];
      var rows = table.tBodies[0].rows;
      if (r >= 0 && r < rows.length && c >= 1 && c < rows[r].cells.length) select(rows[r].cells[c], false);
    });
  }

  // ---------------------------------------------------------------- graph (dagre lays it out, left to right)
  var SVG = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  // an edge leaves its task's right side and enters the downstream task's left side (dagre's own end points
  // may be on a box's top or bottom, where arrows into a dense rank pile up); a curve between neighbouring ranks,
  // through dagre's bend points when it skips ranks
  function edgePath(from, to, pts) {
    var a = {x: from.x + from.width / 2, y: from.y}, b = {x: to.x - to.width / 2, y: to.y};
    var inner = pts.slice(1, -1).filter(function (p) { return p.x > a.x + 10 && p.x < b.x - 10; });
    if (inner.length <= 1) {
      var dx = Math.max((b.x - a.x) / 2, 20);
      return "M" + a.x + "," + a.y + "C" + (a.x + dx) + "," + a.y + " " + (b.x - dx) + "," + b.y + " " + b.x + "," + b.y;
    }
    return "M" + [a].concat(inner, [b]).map(function (p) { return p.x + "," + p.y; }).join("L");
  }
  function setupGraph() {
    var svg = document.getElementById("graph"), holder = document.getElementById("graph-data");
    if (!svg || !holder || !window.dagre) return;
    var data = JSON.parse(holder.textContent), g = new dagre.graphlib.Graph();
    g.setGraph({rankdir: "LR", nodesep: 22, ranksep: 70, marginx: 20, marginy: 20});
    g.setDefaultEdgeLabel(function () { return {}; });
    // a trigger rule other than all_success belongs to the downstream task: it is written once, inside that
    // task's box (a third line the layout makes room for), not on each incoming edge (labels overlapped there)
    data.nodes.forEach(function (n) {
      var width = Math.max(120, 8 * n.id.length + 30, n.rule ? 6.3 * n.rule.length + 50 : 0);
      g.setNode(n.id, {width: width, height: n.rule ? 58 : 44, data: n});
    });
    data.edges.forEach(function (e) { g.setEdge(e.source, e.target, {rule: e.rule}); });
    dagre.layout(g);
    var size = g.graph();
    svg.setAttribute("width", size.width); svg.setAttribute("height", size.height);
    svg.setAttribute("viewBox", "0 0 " + size.width + " " + size.height);
    el("defs", {}, svg).innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="currentColor"/></marker>';
    g.edges().forEach(function (e) {
      var edge = g.edge(e), d = edgePath(g.node(e.v), g.node(e.w), edge.points);
      var path = el("path", {d: d, "class": edge.rule ? "edge ruled" : "edge", "marker-end": "url(#arrow)"}, svg);
      el("title", {}, path).textContent = e.v + " \u2192 " + e.w + (edge.rule ? " (trigger rule " + edge.rule + ")" : "");
    });
    g.nodes().forEach(function (id) {
      var n = g.node(id), info = n.data;
      var grp = el("g", {"class": "node k-" + info.kind, transform: "translate(" + (n.x - n.width / 2) + "," + (n.y - n.height / 2) + ")",
        tabindex: "0", role: "button", "data-task": id,
        "aria-label": id + ", " + info.kind + ", " + info.state + (info.rule ? ", trigger rule " + info.rule : "")}, svg);
      el("rect", {width: n.width, height: n.height, fill: "#fff"}, grp);
      el("rect", {width: 10, height: n.height, fill: COLORS[info.state] || "white", "class": "state", stroke: "none"}, grp);
      var label = el("text", {x: 18, y: 19}, grp); label.textContent = id;
      var kind = el("text", {x: 18, y: 35, "class": "kindlabel"}, grp);
      kind.textContent = info.kind + " · " + (info.state === "none" ? "no status" : info.state);
      if (info.rule) el("text", {x: 18, y: 50, "class": "rule"}, grp).textContent = "rule: " + info.rule;
    });
    function open(node) {
      document.querySelectorAll("#graph .node.sel").forEach(function (n) { n.classList.remove("sel"); });
      node.classList.add("sel");
      if (svg.dataset.run) panel(svg.dataset.dag, svg.dataset.run, node.dataset.task);
    }
    svg.addEventListener("click", function (e) { var n = e.target.closest(".node"); if (n) open(n); });
    svg.addEventListener("keydown", function (e) {
      var n = e.target.closest(".node"); if (n && (e.key === "Enter" || e.key === " ")) { open(n); e.preventDefault(); }
    });
    if (!svg.dataset.run) return;
    setInterval(function () {  // overlay the run's states as they change
      fetch(base + "/dags/" + encodeURIComponent(svg.dataset.dag) + "/graph?run_id=" + encodeURIComponent(svg.dataset.run),
        {headers: {"HX-Request": "true", "HX-Target": "graph-states"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) return;
          d.nodes.forEach(function (n) {
            var grp = svg.querySelector('.node[data-task="' + CSS.escape(n.id) + '"]');
            if (!grp) return;
            grp.querySelector("rect.state").setAttribute("fill", COLORS[n.state] || "white");
            grp.querySelector(".kindlabel").textContent = n.kind + " · " + (n.state === "none" ? "no status" : n.state);
            grp.setAttribute("aria-label", n.id + ", " + n.kind + ", " + n.state + (n.rule ? ", trigger rule " + n.rule : ""));
          });
        });
    }, 3000);
  }
})();
