// A job's page (/arbeitsbereich/auftraege/{id}): polls its JSON twin while the job runs and
// shows the progress; when the job's state changes, the page is loaded again with the result.
(function () {
  "use strict";
  var box = document.querySelector("[data-job-poll]");
  if (!box) return;
  var state = box.getAttribute("data-job-state");
  if (state === "done" || state === "failed") return;
  var bar = box.querySelector("progress");
  var percent = box.querySelector("[data-job-percent]");
  var message = box.querySelector("[data-job-message]");
  var format = new Intl.NumberFormat(document.documentElement.lang || "de",
                                     {style: "percent", maximumFractionDigits: 1});
  function poll() {
    fetch(box.getAttribute("data-job-poll"), {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (job) {
        if (job.state !== state) { window.location.reload(); return; }
        bar.value = job.progress;
        bar.textContent = percent.textContent = format.format(job.progress);
        if (message.textContent !== job.message) message.textContent = job.message;
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
