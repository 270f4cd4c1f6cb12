/* CallTrace website tag: shows a firm's tracking numbers on its own website (services/web/README.md,
   "The website tag"). Paste before </body>:
     <script src="https://<your CallTrace address>/dni.js" data-site-key="ws_…" async></script>
   Before consent it stores nothing on the device and sends only the key: the firm's numbers show
   as its website source's number. After window.calltrace.consent({analytics: true, ads: true})
   (or window.calltraceConsent set before it loads, or Google Consent Mode's analytics_storage
   'granted' in the dataLayer) it reserves a number for the visit, keeps the visitor id in
   localStorage and the visit id in sessionStorage, and renews the number while the page is seen. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || (window.calltrace && window.calltrace.version)) { return; }
  var key = script.getAttribute("data-site-key") || "";
  var api = new URL("/dni/v1/", script.src).href;
  // data-renew-seconds: how often the number is renewed while the page is seen (tests shorten it).
  var every = Math.min(Math.max(Number(script.getAttribute("data-renew-seconds")) || 60, 1), 600) * 1000;
  var VISITOR = "calltrace_visitor", VISIT = "calltrace_visit";
  var SKIP = /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA|INPUT|SELECT|OPTION|TEMPLATE)$/;
  var PHONE = /\+?\(?\d[\d\s().-]{8,18}\d/g;
  var query = new URLSearchParams(location.search);
  var config = null, number = "", shown = {}, consent = { analytics: false, ads: false };
  var status = "asking", visit = "", busy = false, lastRenew = 0, renewals = 0, timer = 0, layerSeen = 0;

  // "020 7946 0000", "+44 (0)20 7946 0000", "0044 20…", "tel:+442079460000" → "02079460000"; else "".
  function national(text) {
    var digits = String(text).replace("(0)", "").replace(/[^\d+]/g, "");
    if (digits.indexOf("+44") === 0) { digits = "0" + digits.slice(3); } else if (digits.indexOf("0044") === 0) { digits = "0" + digits.slice(4); }
    return /^0\d{9,10}$/.test(digits) ? digits : "";
  }

  // As UK sites print them: 020 7946 0000, 0118 496 0000, 0300 123 4567, 01632 960000, 07700 900123.
  function spaced(n) {
    var cuts = /^02/.test(n) ? [3, 7] : /^0(1\d1|11|[3589])/.test(n) ? [4, 7] : [5], parts = [], at = 0;
    cuts.concat(n.length).forEach(function (cut) { parts.push(n.slice(at, cut)); at = cut; });
    return parts.join(" ");
  }

  // The new number in the style of the one it replaces: international or not, spaced or not.
  function styled(original, n) {
    var international = /^\s*(\+|00)/.test(original), grouped = /[\s().-]/.test(original.trim());
    var text = grouped ? spaced(n) : n;
    return international ? "+44" + (grouped ? " " : "") + text.slice(1) : text;
  }

  function swapText(node) {
    if (!node.parentNode || SKIP.test(node.parentNode.nodeName)) { return; }
    var text = node.nodeValue, changed = text.replace(PHONE, function (found) {
      var n = national(found);
      return n && shown[n] && n !== number ? styled(found, number) : found;
    });
    if (changed !== text) { node.nodeValue = changed; }
  }

  function swapLink(link) {
    var href = link.getAttribute("href") || "", n;
    try { n = national(decodeURIComponent(href.slice(4))); } catch (e) { return; }
    if (/^tel:/i.test(href) && n && shown[n] && n !== number) { link.setAttribute("href", "tel:+44" + number.slice(1)); }
  }

  function swap(root) {
    if (!number || !root) { return; }
    if (root.nodeType === 3) { swapText(root); return; }
    if (root.nodeType !== 1 || SKIP.test(root.nodeName)) { return; }
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), node;
    while ((node = walker.nextNode())) { swapText(node); }
    if (root.matches("a[href]")) { swapLink(root); }
    root.querySelectorAll("a[href]").forEach(swapLink);
  }

  // Shows `e164` wherever the firm's numbers (or one shown before) are printed or linked.
  function show(e164) {
    var n = national(e164);
    if (!n) { return; }
    shown[n] = true;
    number = n;
    swap(document.body);
  }

  function ask(path, body) {
    var init = { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
    if (body) { init.method = "POST"; init.headers = { "Content-Type": "text/plain" }; init.body = JSON.stringify(body); }
    return fetch(api + path + "?key=" + encodeURIComponent(key), init).then(function (response) {
      return response.json().then(function (answer) { if (!response.ok) { throw answer; } return answer; });
    });
  }

  function stored(storage, name) { try { return window[storage].getItem(name) || ""; } catch (e) { return ""; } }
  function store(storage, name, value) {
    try { if (value) { window[storage].setItem(name, value); } else { window[storage].removeItem(name); } } catch (e) { /* storage refused */ }
  }

  function referrerHost() {
    try { var host = new URL(document.referrer).host; return host === location.host ? "" : host; } catch (e) { return ""; }
  }

  // After consent: a visit and its number (the visit of this tab, if it has one, is renewed).
  function reserve() {
    if (busy || !config || !consent.analytics) { return; }
    busy = true;
    var body = { visitorId: stored("localStorage", VISITOR), visitId: stored("sessionStorage", VISIT),
                 landingPath: location.pathname.slice(0, 200), referrerHost: referrerHost(), clickIds: {} };
    ["source", "medium", "campaign", "term", "content"].forEach(function (name) {
      body["utm" + name[0].toUpperCase() + name.slice(1)] = (query.get("utm_" + name) || "").slice(0, 100);
    });
    if (consent.ads) {
      config.clickIds.forEach(function (kind) { var id = query.get(kind); if (id && id.length <= 200) { body.clickIds[kind] = id; } });
    }
    ask("reserve", body).then(function (answer) {
      if (!consent.analytics) { return; }
      store("localStorage", VISITOR, answer.visitorId);
      store("sessionStorage", VISIT, answer.visitId);
      visit = answer.visitId;
      lastRenew = Date.now();
      show(answer.number);
    }, forgetVisit).then(settle);
  }

  // While the visitor stays: the number kept, or the new one shown if it changed.
  function renew() {
    if (busy || !visit) { return; }
    busy = true;
    lastRenew = Date.now();
    ask("renew", { visitId: visit }).then(function (answer) {
      renewals += 1;
      if (visit) { show(answer.number); }
    }, forgetVisit).then(settle);
  }

  // A visit the gateway no longer knows (ended, or another site's): a new one. Any other failure
  // keeps what is shown, for the next try.
  function forgetVisit(refusal) {
    if (refusal && refusal.error === "visit_not_found") { visit = ""; store("sessionStorage", VISIT, ""); setTimeout(reserve, 0); }
  }

  function settle() {
    busy = false;
    clearTimeout(timer);
    if (visit) { timer = setTimeout(tick, every); }
  }

  function tick() {
    readLayer();
    if (document.visibilityState === "visible" && Date.now() - lastRenew >= every - 250) { renew(); } else { settle(); }
  }

  function active() {
    readLayer();
    if (visit && document.visibilityState === "visible" && Date.now() - lastRenew >= every) { renew(); }
  }

  // Consent withdrawn: what was stored goes, and the source's number shows again.
  function forget() {
    visit = "";
    clearTimeout(timer);
    store("localStorage", VISITOR, "");
    store("sessionStorage", VISIT, "");
    show(config.sourceNumber || config.targets[0]);
  }

  function apply() {
    if (!config) { return; }
    if (consent.analytics && !visit) { reserve(); } else if (!consent.analytics && visit) { forget(); }
  }

  // {analytics, ads} (booleans) or Google Consent Mode's {analytics_storage, ad_storage}; keys left out stay as they were.
  function update(given) {
    if (!given || typeof given !== "object") { return; }
    if ("analytics" in given) { consent.analytics = given.analytics === true; }
    if ("ads" in given) { consent.ads = given.ads === true; }
    if ("analytics_storage" in given) { consent.analytics = given.analytics_storage === "granted"; }
    if ("ad_storage" in given) { consent.ads = given.ad_storage === "granted"; }
    setTimeout(apply, 0);  // a banner's calls one after another count as one
  }

  // Google Consent Mode: gtag('consent', 'default' | 'update', {…}) entries in the page's dataLayer.
  function readLayer() {
    var layer = window.dataLayer;
    if (!Array.isArray(layer)) { return; }
    for (; layerSeen < layer.length; layerSeen++) {
      var entry = layer[layerSeen];
      if (entry && entry[0] === "consent" && (entry[1] === "default" || entry[1] === "update")) { update(entry[2]); }
    }
  }

  function start() {
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        if (record.type === "childList") { record.addedNodes.forEach(swap); } else { swap(record.target); }
      });
    }).observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["href"] });
    var layer = window.dataLayer;
    if (Array.isArray(layer)) {
      var push = layer.push;
      layer.push = function () { var result = push.apply(layer, arguments); readLayer(); return result; };
    }
    ["pointerdown", "keydown", "scroll"].forEach(function (name) { window.addEventListener(name, active, { passive: true }); });
    document.addEventListener("visibilitychange", active);
    ask("tag").then(function (answer) {
      config = answer;
      status = "ready";
      answer.targets.forEach(function (target) { shown[national(target)] = true; });
      show(answer.sourceNumber);
      readLayer();
      update(window.calltraceConsent);
      apply();
    }, function () { status = "refused"; /* not this site's key or origin, or not reachable: the page keeps its numbers */ });
  }

  window.calltrace = {
    version: 1,
    consent: update,
    // What the tag shows and has done, for the firm's developer and its tests: tag "asking",
    // "ready" or "refused" (a key or origin the gateway did not accept, or no answer).
    state: function () {
      return { tag: status, number: number ? "+44" + number.slice(1) : "", consent: { analytics: consent.analytics, ads: consent.ads },
               reserved: !!visit, renewals: renewals };
    }
  };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
