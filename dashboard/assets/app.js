// tollgate's dashboard: reads the read-only JSON API of the replica that
// serves it and polls it while a page is shown. Everything is built with
// DOM calls and textContent: nothing from the API is parsed as HTML.
"use strict";

(function () {
  const pollMillis = 3000;
  const api = "../api/";
  const pages = {
    overview: ["overview", "entrypoints", "http/routers", "http/services", "http/middlewares"],
    cluster: ["cluster"],
    certificates: ["certificates"],
    http: ["http/routers", "http/services", "http/middlewares"],
    events: ["events"],
  };
  // last holds each endpoint's last answer text: a page is drawn again
  // only when what it shows changed.
  const last = {};
  const data = {};
  let timer = 0;
  let inFlight = false;
  // again asks for one more refresh once the one in flight ends (the tab
  // changed meanwhile).
  let again = false;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fill(tbody, rows, empty, cols) {
    tbody.replaceChildren();
    if (rows.length === 0) {
      tbody.append(el("tr", {}, el("td", { colspan: cols, class: "muted" }, empty)));
      return;
    }
    tbody.append(...rows);
  }

  function time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return el("time", { datetime: iso, title: iso }, d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }));
  }

  function rel(iso) {
    if (!iso) return "";
    const ms = new Date(iso) - Date.now();
    const abs = Math.abs(ms);
    let t;
    if (abs < 90e3) t = Math.round(abs / 1e3) + " s";
    else if (abs < 90 * 60e3) t = Math.round(abs / 60e3) + " min";
    else if (abs < 48 * 3600e3) t = Math.round(abs / 3600e3) + " h";
    else t = Math.round(abs / 86400e3) + " days";
    return ms >= 0 ? "in " + t : t + " ago";
  }

  function badge(word, kind) {
    return el("span", { class: "badge " + (kind || word) }, word);
  }

  function statusKind(s) {
    switch (s) {
      case "enabled": case "ok": case "UP": case "leader": return "good";
      case "warning": case "renewalDue": case "ordering": case "missing": return "warn";
      default: return "bad";
    }
  }

  function list(xs) {
    return (xs || []).join(", ");
  }

  // ---- pages ----

  function drawOverview() {
    const o = data.overview;
    const cards = document.getElementById("overview-counts");
    cards.replaceChildren();
    if (o) {
      for (const [label, c] of [["Routers", o.http.routers], ["Services", o.http.services], ["Middlewares", o.http.middlewares]]) {
        cards.append(el("div", { class: "card", "data-count": label.toLowerCase() },
          el("h3", {}, label),
          el("p", { class: "big" }, c.total),
          el("p", {}, el("span", { class: c.warnings ? "warn-text" : "" }, c.warnings + " warnings"), " · ",
            el("span", { class: c.errors ? "bad-text" : "" }, c.errors + " errors"))));
      }
      cards.append(el("div", { class: "card" }, el("h3", {}, "Providers"), el("p", {}, list(o.providers) || "none"),
        el("p", { class: "muted" }, "metrics: " + (o.features.metrics || "off") + " · access log: " + (o.features.accessLog ? "on" : "off"))));
    }
    const eps = data.entrypoints || [];
    fill(document.querySelector("#entrypoints tbody"), eps.map(e => el("tr", { "data-entrypoint": e.name },
      el("th", { scope: "row" }, e.name),
      el("td", {}, e.address),
      el("td", {}, e.http && e.http.tls ? "yes" : "no"),
      el("td", {}, e.http && e.http.redirections ? e.http.redirections.entryPoint.to : ""))), "No entry points.", 4);
    const problems = [];
    for (const [kind, key] of [["router", "http/routers"], ["service", "http/services"], ["middleware", "http/middlewares"]]) {
      for (const it of data[key] || []) {
        if (it.status !== "enabled" || (it.error && it.error.length)) {
          problems.push(el("tr", {}, el("td", {}, kind), el("th", { scope: "row" }, it.name),
            el("td", {}, badge(it.status, statusKind(it.status))), el("td", {}, list(it.error))));
        }
      }
    }
    fill(document.querySelector("#overview-errors tbody"), problems, "None: every router, service and middleware is enabled.", 4);
  }

  function drawCluster() {
    const c = data.cluster;
    const dl = document.getElementById("cluster-summary");
    dl.replaceChildren();
    if (!c) return;
    const add = (k, v, attrs) => dl.append(el("div", attrs || {}, el("dt", {}, k), el("dd", {}, v)));
    add("Leader", c.leader ? c.leader.node : "none: no replica leads", { "data-field": "leader" });
    if (c.leader) {
      add("Term", c.leader.term, { "data-field": "term" });
      add("Leading since", time(c.leader.since));
    }
    add("Configuration", c.configuration);
    add("Latest challenge revision", c.latestRevision);
    const cc = c.certificates;
    add("Certificates", `${cc.total} total, ${cc.expiringWithin7Days} expiring within 7 days, ${cc.expired} expired, ${cc.ordering} ordering, ${cc.failing} failing, ${cc.unusable} unusable`);
    if (c.account) add("ACME account", el("span", { class: "bad-text" }, c.account));
    fill(document.querySelector("#nodes tbody"), c.nodes.map(n => el("tr", { "data-node": n.id },
      el("th", { scope: "row" }, n.id),
      el("td", {}, badge(n.role, n.role === "leader" ? "good" : "neutral")),
      el("td", {}, n.version),
      el("td", {}, time(n.started)),
      el("td", {}, n.appliedRevision),
      el("td", {}, n.lag),
      el("td", {}, n.inSync ? badge("in sync", "good") : badge("behind", "warn")),
      answered(n))), "No live replica is registered.", 8);
  }

  // answered is a replica's cell of ACME validation requests answered:
  // the count, then how long ago the latest was and for which domain.
  function answered(n) {
    const count = n.challengesAnswered || 0;
    const td = el("td", { "data-field": "answered", "data-value": count }, String(count));
    if (n.lastChallengeAnswered) {
      const latest = rel(n.lastChallengeAnswered) + (n.lastChallengeName ? ", " + n.lastChallengeName : "");
      td.append(el("br"), el("span", { class: "small", title: n.lastChallengeAnswered }, latest));
    }
    return td;
  }

  function expiry(c) {
    if (!c.notAfter) return el("td", {}, "");
    const days = (new Date(c.notAfter) - Date.now()) / 86400e3;
    let kind = "good";
    if (days < 0) kind = "bad";
    else if (days < 7) kind = "bad";
    else if (days < 30) kind = "warn";
    const left = days < 0 ? "expired" : Math.floor(days) + " days left";
    return el("td", { class: "expiry " + kind, "data-field": "notAfter", "data-value": c.notAfter },
      time(c.notAfter), el("br"), el("span", { class: "small" }, left));
  }

  function renewal(r) {
    if (!r) return "";
    const out = [];
    if (r.renewAt) out.push(el("div", {}, "renews ", rel(r.renewAt)));
    if (r.windowStart) out.push(el("div", { class: "small" }, "CA window ", time(r.windowStart), " – ", time(r.windowEnd)));
    if (r.requested) out.push(el("div", {}, badge("renewal requested", "warn")));
    if (r.orderingSince) out.push(el("div", {}, "ordering since ", time(r.orderingSince)));
    if (r.ariFailures) out.push(el("div", { class: "small warn-text" }, `renewal information failed ${r.ariFailures}×: ${r.ariLastError || ""}`));
    return out;
  }

  function drawCertificates() {
    const certs = data.certificates || [];
    const q = document.getElementById("cert-search").value.trim().toLowerCase();
    const st = document.getElementById("cert-status").value;
    const shown = certs.filter(c => (!st || c.status === st) &&
      (!q || c.name.toLowerCase().includes(q) || c.sans.some(s => s.toLowerCase().includes(q))));
    document.getElementById("cert-count").textContent = `${shown.length} of ${certs.length} shown`;
    fill(document.querySelector("#certificates tbody"), shown.map(c => {
      const r = c.renewal || {};
      const errText = r.lastError || c.error || "";
      return el("tr", { "data-cert": c.name, "data-status": c.status },
        el("th", { scope: "row" }, c.name),
        el("td", {}, list(c.sans)),
        el("td", {}, c.issuer || ""),
        el("td", { class: "mono", "data-field": "serial" }, c.serial || ""),
        expiry(c),
        el("td", {}, renewal(c.renewal)),
        el("td", { "data-field": "status" }, badge(c.status, statusKind(c.status)), el("div", { class: "small" }, c.statusText)),
        el("td", { class: "small error", "data-field": "lastError" }, errText, r.failures ? el("div", {}, `${r.failures} failure(s) in a row`) : null),
        el("td", { "data-field": "nextAttempt" }, r.gaveUp ? "gave up" : (r.nextAttempt ? [time(r.nextAttempt), el("div", { class: "small" }, rel(r.nextAttempt))] : "")));
    }), certs.length ? "No certificate matches the filter." : "No certificates in the store.", 9);
  }

  function servers(s) {
    const d = s.serverDetails;
    if (d && d.length) {
      return el("ul", { class: "plain" }, d.map(x => el("li", { "data-server": x.url },
        badge(x.status, statusKind(x.status)), " ", x.url, x.ejected ? " (ejected)" : "")));
    }
    const st = s.serverStatus || {};
    return el("ul", { class: "plain" }, Object.keys(st).sort().map(u => el("li", { "data-server": u }, badge(st[u], statusKind(st[u])), " ", u)));
  }

  function drawHTTP() {
    fill(document.querySelector("#routers tbody"), (data["http/routers"] || []).map(r => el("tr", { "data-router": r.name },
      el("th", { scope: "row" }, r.name),
      el("td", { class: "mono" }, r.rule),
      el("td", {}, list(r.entryPoints || r.using)),
      el("td", {}, r.service),
      el("td", {}, list(r.middlewares)),
      el("td", { "data-field": "status" }, badge(r.status, statusKind(r.status)), r.error ? el("div", { class: "small" }, list(r.error)) : null))), "No routers.", 6);
    fill(document.querySelector("#services tbody"), (data["http/services"] || []).map(s => el("tr", { "data-service": s.name },
      el("th", { scope: "row" }, s.name),
      el("td", {}, s.type),
      el("td", {}, servers(s)),
      el("td", {}, list(s.usedBy)),
      el("td", { "data-field": "status" }, badge(s.status, statusKind(s.status)), s.error ? el("div", { class: "small" }, list(s.error)) : null))), "No services.", 5);
    fill(document.querySelector("#middlewares tbody"), (data["http/middlewares"] || []).map(m => el("tr", { "data-middleware": m.name },
      el("th", { scope: "row" }, m.name),
      el("td", {}, m.type),
      el("td", {}, list(m.usedBy)),
      el("td", {}, badge(m.status, statusKind(m.status)), m.error ? el("div", { class: "small" }, list(m.error)) : null))), "No middlewares.", 4);
  }

  function drawEvents() {
    fill(document.querySelector("#events tbody"), (data.events || []).map(e => el("tr", { "data-kind": e.kind },
      el("td", {}, time(e.time)),
      el("td", {}, badge(e.kind, e.kind.endsWith("Failed") || e.kind.endsWith("Rejected") ? "bad" : "good")),
      el("td", {}, e.message))), "No events since this replica started.", 3);
  }

  const draw = { overview: drawOverview, cluster: drawCluster, certificates: drawCertificates, http: drawHTTP, events: drawEvents };

  // ---- polling ----

  function current() {
    const p = location.hash.replace(/^#/, "");
    return pages[p] ? p : "overview";
  }

  async function get(ep) {
    const res = await fetch(api + ep, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" });
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try { msg = JSON.parse(text).message; } catch (e) { /* not JSON */ }
      throw new Error(`/api/${ep}: ${res.status} ${msg}`);
    }
    return text;
  }

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const page = current();
    const problems = [];
    let changed = false;
    try {
      const texts = await Promise.all(pages[page].map(ep => get(ep).catch(err => { problems.push(err.message); return null; })));
      pages[page].forEach((ep, i) => {
        if (texts[i] === null || texts[i] === last[ep]) return;
        last[ep] = texts[i];
        data[ep] = JSON.parse(texts[i]);
        changed = true;
      });
      if (changed || document.body.dataset.drawn !== page) {
        draw[page]();
        document.body.dataset.drawn = page;
      }
      const box = document.getElementById("problem");
      box.hidden = problems.length === 0;
      box.textContent = problems.length ? "Cannot read the API: " + problems.join("; ") : "";
      const up = document.getElementById("updated");
      if (changed) up.textContent = "Updated " + new Date().toLocaleTimeString();
      document.body.dataset.updated = String(Date.now());
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  async function version() {
    try {
      const v = JSON.parse(await get("version"));
      document.getElementById("version").textContent = `version ${v.Version}${v.commit ? " (" + v.commit + ")" : ""}, started ${new Date(v.startDate).toLocaleString()}`;
    } catch (e) { /* shown by the page's own requests */ }
  }

  function show(focus) {
    const page = current();
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.page !== page;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = `${document.getElementById("h-" + page).textContent} · tollgate dashboard`;
    delete document.body.dataset.drawn;
    if (focus) document.getElementById("h-" + page).focus({ preventScroll: true });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", () => show(true));
    const redraw = () => { if (current() === "certificates") drawCertificates(); };
    document.getElementById("cert-search").addEventListener("input", redraw);
    document.getElementById("cert-status").addEventListener("change", redraw);
    document.getElementById("cert-filters").addEventListener("submit", e => e.preventDefault());
    version();
    show(false);
    timer = setInterval(() => { if (!document.hidden) refresh(); }, pollMillis);
  });
  window.addEventListener("pagehide", () => clearInterval(timer));
})();
