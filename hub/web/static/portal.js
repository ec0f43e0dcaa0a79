// Progressive enhancement of the portal's dataset search; the page works fully without it.
// A changed filter or sort order updates the results and counts in place (the count is a
// polite live region), keeps the focus where it was and puts the search into the address bar.
"use strict";
(function () {
  var form = document.querySelector("form.search-page");
  if (!form || !window.fetch || !window.DOMParser) { return; }
  document.documentElement.classList.add("js");
  var pending = null;

  function refresh() {
    var params = new URLSearchParams(new FormData(form));
    var url = form.action + "?" + params.toString();
    if (pending) { pending.abort(); }
    pending = new AbortController();
    fetch(url, { signal: pending.signal, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var active = document.activeElement;
        var key = active && active.name ? [active.name, active.value] : null;
        ["facets", "found"].forEach(function (part) {
          var fresh = page.querySelector("form.search-page ." + part);
          var old = form.querySelector("." + part);
          if (fresh && old) { old.innerHTML = fresh.innerHTML; }
        });
        var status = document.getElementById("search-status");
        var count = form.querySelector(".found h2");
        if (status && count) { status.textContent = count.textContent; }
        if (key) {
          form.querySelectorAll("[name]").forEach(function (el) {
            if (el.name === key[0] && el.value === key[1]) { el.focus(); }
          });
        }
        history.replaceState(null, "", url);
      })
      .catch(function () { form.submit(); });
  }

  form.addEventListener("change", function (event) {
    if (event.target.matches(".facets input[type=checkbox], select")) { refresh(); }
  });
}());
