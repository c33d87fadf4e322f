// edgecheck report: sortable tables and the battery view. No network, no innerHTML with data: every value
// from the results reaches the page as text (textContent), never as markup.
(function () {
  "use strict";

  // ---- numbers as people read them: never e-notation -------------------------------------------
  function fmtNum(v, digits) {
    digits = digits || 3;
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e4) {
      var units = [["G", 1e9], ["M", 1e6], ["k", 1e3]];
      for (var i = 0; i < units.length; i++) {
        if (a >= units[i][1]) return fmtNum(v / units[i][1], digits) + units[i][0];
      }
    }
    var decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(a)));
    var text = v.toFixed(Math.min(decimals, 20));
    if (text.indexOf(".") >= 0) text = text.replace(/0+$/, "").replace(/\.$/, "");
    return text;
  }
  function fmtEng(v, unit) {
    if (v === 0 || !isFinite(v)) return fmtNum(v) + " " + unit;
    var prefixes = [["G", 1e9], ["M", 1e6], ["k", 1e3], ["", 1], ["m", 1e-3], ["µ", 1e-6], ["n", 1e-9]];
    for (var i = 0; i < prefixes.length; i++) {
      if (Math.abs(v) >= prefixes[i][1] * 0.9995 || i === prefixes.length - 1) {
        return fmtNum(v / prefixes[i][1]) + " " + prefixes[i][0] + unit;
      }
    }
  }
  function fmtHours(h) {
    return h >= 48 ? fmtNum(h) + " h (" + fmtNum(h / 24) + " days)" : fmtNum(h) + " h";
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  // ---- sortable tables ----------------------------------------------------------------------------
  function cellKey(td) {
    if (!td) return "";
    var v = td.getAttribute("data-v");
    if (v !== null && v !== "") {
      var n = Number(v);
      return isNaN(n) ? v.toLowerCase() : n;
    }
    return td.textContent.trim().toLowerCase();
  }
  function compareKeys(a, b) {
    var an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) return a - b;
    if (an) return -1;  // numbers before text ("-")
    if (bn) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    var ths = table.tHead.rows[0].cells;
    for (var i = 0; i < ths.length; i++) ths[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", dir);
    var rows = Array.prototype.slice.call(body.rows).map(function (tr, i) { return [tr, i]; });
    rows.sort(function (x, y) {
      var c = compareKeys(cellKey(x[0].cells[col]), cellKey(y[0].cells[col]));
      if (dir === "descending") c = -c;
      return c !== 0 ? c : x[1] - y[1];
    });
    rows.forEach(function (r) { body.appendChild(r[0]); });
  }
  function makeSortable(table) {
    if (!table.tHead || table.getAttribute("data-sortable-ready")) return;
    table.setAttribute("data-sortable-ready", "1");
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      var b = el("button");
      b.type = "button";
      while (th.firstChild) b.appendChild(th.firstChild);
      th.appendChild(b);
      b.addEventListener("click", function () { sortTable(table, col, th); });
    });
  }

  // ---- the battery view ---------------------------------------------------------------------------
  function readPositive(input) {
    var v = Number(input.value);
    return input.value.trim() !== "" && isFinite(v) && v > 0 ? v : null;
  }
  function figureAt(d, f, rate, capacity) {
    // average power = idle + dynamic energy per inference x rate; life = capacity / average power
    if (!f) return null;
    var duty = f.latency_s * rate;
    var active = f.dynamic_j * rate;
    var avg = d.idle_w + active;
    var r = {duty: duty, idle: d.idle_w, active: active, avg: avg, sustained: duty <= 1};
    r.hours = r.sustained ? capacity / avg : null;
    r.low = r.sustained ? capacity / (d.idle_w + f.dynamic_high_j * rate) : null;
    r.high = r.sustained ? capacity / (d.idle_w + f.dynamic_low_j * rate) : null;
    return r;
  }
  function longer(data, m, rate, capacity) {
    var t = data.roles.tpu, a = data.roles.a53;
    if (!t || !a) return null;
    var dev = {};
    data.devices.forEach(function (d) { dev[d.name] = d; });
    var ft = figureAt(dev[t], m.figures[t], rate, capacity), fa = figureAt(dev[a], m.figures[a], rate, capacity);
    if (!ft || !fa) return null;
    if (!ft.sustained && !fa.sustained) return {winner: "neither sustains the rate", key: "none"};
    if (!ft.sustained) return {winner: a, key: a, note: "only " + a + " sustains the rate"};
    if (!fa.sustained) return {winner: t, key: t, note: "only " + t + " sustains the rate"};
    if (ft.hours === fa.hours) return {winner: "equal", key: "equal"};
    var overlap = ft.low <= fa.high && fa.low <= ft.high && (ft.low !== ft.high || fa.low !== fa.high);
    var w = ft.hours > fa.hours ? t : a, other = w === t ? fa : ft, best = w === t ? ft : fa;
    var gain = (best.hours / other.hours - 1) * 100;
    if (overlap) {
      // say why: where both boards' idle power is nearly all of what they draw, the inferences barely move the lives
      var share = Math.min(ft.idle / ft.avg, fa.idle / fa.avg);
      var why = share >= 0.9
        ? "idle power dominates both (" + fmtNum(ft.idle, 3) + " W and " + fmtNum(fa.idle, 3) + " W are at least " +
          fmtNum(Math.floor(share * 1000) / 10, 3) + " % of their average power at this rate): the lives differ by " +
          fmtNum(gain, 2) + " %, inside the energy intervals"
        : "the energy intervals overlap";
      return {winner: "too close to call", key: "too-close", note: why};
    }
    return {winner: w, key: w, note: "+" + fmtNum(gain, 2) + " %"};
  }
  function segmentsText(data, rate, capacity) {
    var out = [], last = null;
    data.models.forEach(function (m) {
      var l = longer(data, m, rate, capacity);
      var w = l ? l.winner : "-";
      if (last && last.w === w) { last.to = m.model; last.n += 1; }
      else { last = {w: w, from: m.model, to: m.model, n: 1}; out.push(last); }
    });
    return out.map(function (s) {
      return s.w + ": " + (s.from === s.to ? s.from : s.from + " … " + s.to) + " (" + s.n + ")";
    }).join("; ");
  }
  function renderBattery(data) {
    var form = document.getElementById("battery-form");
    var msg = document.getElementById("battery-message");
    var capacity = readPositive(document.getElementById("capacity"));
    var inputs = form.querySelectorAll("input.rate");
    var rates = [], bad = [];
    Array.prototype.forEach.call(inputs, function (inp) {
      var v = readPositive(inp);
      if (v === null) bad.push(inp.getAttribute("aria-label")); else rates.push(v);
    });
    if (capacity === null) bad.unshift("battery capacity");
    msg.textContent = bad.length ? "Not a number greater than 0: " + bad.join(", ") + "." : "";
    if (capacity === null || !rates.length) return;
    // the detail table follows the rate chosen in the list: one option per rate input, updated in place
    var select = document.getElementById("detail-rate");
    Array.prototype.forEach.call(inputs, function (inp, i) {
      var v = readPositive(inp), o = select.options[i];
      o.textContent = v === null ? "-" : fmtNum(v) + " per second";
      o.value = v === null ? "" : String(v);
      o.disabled = v === null;
    });
    var detailRate = Number(select.value) || rates[0];

    var dev = {};
    data.devices.forEach(function (d) { dev[d.name] = d; });
    var t = data.roles.tpu, a = data.roles.a53;

    // summary: one row per rate
    var sbody = document.querySelector("#battery-summary tbody");
    sbody.textContent = "";
    rates.forEach(function (rate) {
      var counts = {}, lives = [];
      data.models.forEach(function (m) {
        var l = longer(data, m, rate, capacity);
        if (l) counts[l.key] = (counts[l.key] || 0) + 1;
        data.devices.forEach(function (d) {
          var f = figureAt(d, m.figures[d.name], rate, capacity);
          if (f && f.sustained) lives.push(f.hours);
        });
      });
      var tr = el("tr");
      var c0 = el("td", fmtNum(rate) + " per second", "num"); c0.setAttribute("data-v", rate); tr.appendChild(c0);
      [a, t].forEach(function (name) {
        var c = el("td", name ? String(counts[name] || 0) : "-", "num");
        c.setAttribute("data-v", name ? counts[name] || 0 : "");
        tr.appendChild(c);
      });
      var other = (counts["too-close"] || 0) + (counts.equal || 0) + (counts.none || 0);
      var co = el("td", String(other), "num"); co.setAttribute("data-v", other); tr.appendChild(co);
      var lo = lives.length ? Math.min.apply(null, lives) : null, hi = lives.length ? Math.max.apply(null, lives) : null;
      var cl = el("td", lo === null ? "-" : fmtHours(lo) + " – " + fmtHours(hi), "num");
      cl.setAttribute("data-v", lo === null ? "" : lo); tr.appendChild(cl);
      tr.appendChild(el("td", t && a ? segmentsText(data, rate, capacity) : "needs a TPU and an A53 device"));
      sbody.appendChild(tr);
    });

    // detail: one row per architecture at the chosen rate
    document.getElementById("detail-rate-text").textContent = fmtNum(detailRate) + " inferences per second";
    var dbody = document.querySelector("#battery-detail tbody");
    dbody.textContent = "";
    data.models.forEach(function (m) {
      var tr = el("tr");
      tr.appendChild(el("td", m.model));
      var cm = el("td", fmtNum(m.macs), "num"); cm.setAttribute("data-v", m.macs); tr.appendChild(cm);
      data.devices.forEach(function (d) {
        var f = figureAt(d, m.figures[d.name], detailRate, capacity);
        var cp = el("td", null, "num"), ch = el("td", null, "num");
        cp.setAttribute("data-device", d.name); ch.setAttribute("data-device", d.name);
        if (!f) { cp.textContent = "-"; ch.textContent = "-"; }
        else {
          cp.appendChild(el("span", fmtEng(f.avg, "W")));
          cp.appendChild(el("small", "idle " + fmtEng(f.idle, "W") + " + active " + fmtEng(f.active, "W")));
          var bar = el("div", null, "bar"), idle = el("span", null, "idle"), act = el("span", null, "active");
          idle.style.width = (100 * f.idle / f.avg) + "%";
          act.style.width = (100 * f.active / f.avg) + "%";
          bar.appendChild(idle); bar.appendChild(act); cp.appendChild(bar);
          cp.setAttribute("data-v", f.avg);
          if (f.sustained) {
            ch.appendChild(el("span", fmtHours(f.hours)));
            ch.appendChild(el("small", "busy " + fmtNum(100 * f.duty, 2) + " % of the time"));
            ch.setAttribute("data-v", f.hours);
          } else {
            ch.appendChild(el("span", "cannot sustain", "mark"));
            ch.appendChild(el("small", "busy " + fmtNum(100 * f.duty, 2) + " % of the time"));
            ch.setAttribute("data-v", "");
          }
        }
        tr.appendChild(cp); tr.appendChild(ch);
      });
      var l = longer(data, m, detailRate, capacity);
      var cw = el("td", l ? l.winner : "-");
      if (l && l.note) cw.appendChild(el("small", l.note));
      if (l && l.key === "too-close") { tr.className = "too-close"; cw.className = "mark"; }
      tr.appendChild(cw);
      dbody.appendChild(tr);
    });
    var d0 = document.querySelector("#battery-detail thead tr");
    Array.prototype.forEach.call(d0.cells, function (th) { th.removeAttribute("aria-sort"); });
  }
  function setupBattery() {
    var node = document.getElementById("battery-data");
    if (!node) return;
    var data = JSON.parse(node.textContent);
    var form = document.getElementById("battery-form");
    var render = function () { renderBattery(data); };
    form.addEventListener("input", render);
    form.addEventListener("change", render);
    form.addEventListener("submit", function (e) { e.preventDefault(); render(); });
    render();
  }

  // ---- figures: say on the page when one did not load ---------------------------------------------
  function checkImages() {
    var im = document.images, ok = 0;
    for (var i = 0; i < im.length; i++) if (im[i].complete && im[i].naturalWidth > 0) ok++;
    document.body.setAttribute("data-images-loaded", ok + "/" + im.length);
    if (ok < im.length) {
      var p = el("p", (im.length - ok) + " figure(s) failed to load", "error");
      document.body.insertBefore(p, document.body.firstChild);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupBattery();
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
  });
  window.addEventListener("load", checkImages);
})();
