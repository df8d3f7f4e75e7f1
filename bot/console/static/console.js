// Call-center console: small progressive enhancements.  Every page works without this file.
//  * search results as you type (debounced; waits for Japanese IME composition to finish)
//  * copy buttons (answer, explanation, a logged question)
//  * "/" moves to the search field; ↓ ↑ move from it through the results, Enter opens one
//  * an error summary takes the focus after a failed submit, a result is scrolled to its top
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  var state = { lastCopied: null, searches: 0 };
  window.kounenConsole = state;

  function announce(text) {
    var live = document.getElementById("live");
    if (!live) return;
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  // -- copy ---------------------------------------------------------------------------
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy") : null;
    if (!button) return;
    var text = button.getAttribute("data-copy-text");
    if (text === null) {
      var target = document.getElementById(button.getAttribute("data-copy-target") || "");
      text = target ? target.textContent.trim() : "";
    }
    if (!text) return;
    var label = button.textContent;
    copyText(text).then(function () {
      state.lastCopied = text;
      button.classList.add("done");
      button.textContent = "コピーしました";
      announce("コピーしました");
      document.dispatchEvent(new CustomEvent("kounen:copied", { detail: text }));
      window.setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 2000);
    }, function () {
      announce("コピーできませんでした。文字を選択してコピーしてください。");
    });
  });

  // -- search as you type -------------------------------------------------------------
  var form = document.getElementById("search-form");
  var input = document.getElementById("q");
  var results = document.getElementById("results");
  if (form && input && results) {
    var timer = null;
    var controller = null;
    var composing = false;
    var lastKey = null;

    var run = function () {
      var params = new URLSearchParams(new FormData(form));
      var key = params.toString();
      if (key === lastKey) return;
      lastKey = key;
      if (controller) controller.abort();
      controller = typeof AbortController === "function" ? new AbortController() : null;
      var url = form.action + (input.value.trim() ? "?" + key : "");
      results.setAttribute("aria-busy", "true");
      fetch(url, {
        headers: { "X-Kounen-Fragment": "1" },
        credentials: "same-origin",
        signal: controller ? controller.signal : undefined
      }).then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          window.location.href = url;  // session over: let the full page handle the login
          return null;
        }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html === null) return;
        results.innerHTML = html;
        results.removeAttribute("aria-busy");
        state.searches += 1;
        history.replaceState(null, "", url);
        var count = results.querySelectorAll(".result").length;
        announce(input.value.trim() ? "候補 " + count + " 件" : "");
        document.dispatchEvent(new CustomEvent("kounen:results", { detail: count }));
      }).catch(function (error) {
        if (error && error.name === "AbortError") return;
        results.removeAttribute("aria-busy");
      });
    };

    var schedule = function () {
      if (composing) return;
      window.clearTimeout(timer);
      timer = window.setTimeout(run, 250);
    };

    input.addEventListener("compositionstart", function () { composing = true; });
    input.addEventListener("compositionend", function () { composing = false; schedule(); });
    input.addEventListener("input", function (event) {
      if (event.isComposing) return;
      schedule();
    });
    var program = document.getElementById("program");
    if (program) program.addEventListener("change", schedule);
    lastKey = new URLSearchParams(new FormData(form)).toString();
  }

  // ↓ ↑ from the search field through the result titles (links: Enter opens one), ↑ from the
  // first back to the field.  Not while an input method is composing: its candidates use the arrows.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
    var field = document.getElementById("q");
    var box = document.getElementById("results");
    if (!field || !box) return;
    var links = Array.prototype.slice.call(box.querySelectorAll(".result-title a, .popular-list a"));
    var at = links.indexOf(document.activeElement);
    if (document.activeElement !== field && at < 0) return;  // arrows elsewhere keep their meaning
    var next = document.activeElement === field ? (event.key === "ArrowDown" ? 0 : -2) : at + (event.key === "ArrowDown" ? 1 : -1);
    if (next === -2 || next >= links.length || !links.length) return;
    event.preventDefault();
    links.forEach(function (link) { link.classList.remove("active"); });
    if (next < 0) { field.focus(); return; }
    links[next].classList.add("active");
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable) return;
    var field = document.getElementById("q");
    if (field) { event.preventDefault(); field.focus(); field.select(); }
  });

  // -- the case queue: new cases appear without reloading (polls cases.json) ------------
  var feedStatus = document.getElementById("case-feed-status");
  var caseRows = document.getElementById("case-rows");
  if (feedStatus && caseRows && feedStatus.getAttribute("data-feed")) {
    var feed = feedStatus.getAttribute("data-feed");
    var columns = [["number", "受付番号"], ["age", "経過"], ["program", "制度"], ["reason", "理由"], ["assignee", "担当"], ["status", "状態"]];
    var known = {};
    Array.prototype.forEach.call(caseRows.querySelectorAll("tr[data-id]"), function (tr) { known[tr.getAttribute("data-id")] = true; });
    var render = function (rows) {
      var fresh = 0;
      var body = document.createDocumentFragment();
      rows.forEach(function (r) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-id", String(r.id));
        if (!known[String(r.id)]) { tr.className = "new-case"; fresh += 1; known[String(r.id)] = true; }
        columns.forEach(function (c) {
          var td = document.createElement("td");
          td.setAttribute("data-label", c[1]);
          if (c[0] === "number") {
            var a = document.createElement("a");
            a.href = r.url; a.className = "case-number"; a.textContent = r.number;
            td.appendChild(a);
          } else {
            td.textContent = r[c[0]] || "—";
          }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      caseRows.textContent = "";
      caseRows.appendChild(body);
      var empty = document.getElementById("case-empty");
      if (empty) empty.hidden = rows.length > 0;
      if (fresh) announce("新しいお問い合わせが " + fresh + " 件あります");
    };
    var poll = function () {
      fetch(feed, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (response) {
        return response.ok && !response.redirected ? response.json() : null;
      }).then(function (data) {
        if (data && data.rows) render(data.rows);
      }).catch(function () { /* the next round tries again */ });
    };
    window.setInterval(poll, 3000);
  }

  // -- after a submit -------------------------------------------------------------------
  var summary = document.getElementById("error-summary");
  var result = document.getElementById("result");
  if (summary) summary.focus();
  else if (result) {
    // The verdict first: the result's top at the top of the screen, not its middle.
    result.scrollIntoView({ block: "start" });
    result.focus({ preventScroll: true });
  }
})();
