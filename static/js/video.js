// A video's page: progress while the job runs (polling the API), then the appearances as a
// timeline with thumbnails; a click seeks the player to the moment the person appears.
(function () {
  "use strict";
  var config = document.getElementById("video-config");
  var csrf = document.querySelector("#video-csrf input[name=csrfmiddlewaretoken]").value;
  var player = document.getElementById("video-player");
  var timeline = document.getElementById("timeline");
  var empty = document.getElementById("timeline-empty");
  var status = document.getElementById("video-status");
  var error = document.getElementById("video-error");
  var line = document.getElementById("video-progress-line");
  var progress = document.getElementById("video-progress");
  var progressText = document.getElementById("video-progress-text");
  var cancel = document.getElementById("video-cancel");

  function clock(seconds) {
    var m = Math.floor(seconds / 60), s = seconds - 60 * m;
    return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
  }

  function entry(item, known) {
    var li = document.createElement("li");
    var button = document.createElement("button");
    button.type = "button";
    button.className = known ? "known" : "unknown";
    button.dataset.start = String(item.start_s);
    if (item.thumbnail) {
      var img = document.createElement("img");
      img.src = item.thumbnail;
      img.alt = known ? item.member : "unknown person";
      button.appendChild(img);
    }
    var text = document.createElement("span");
    text.textContent = (known ? item.member : "unknown") + " · " + clock(item.start_s) + "–" + clock(item.end_s) +
      (item.best_similarity === null ? "" :
        (known ? " · best " : " · nearest member ") + item.best_similarity.toFixed(2));
    button.appendChild(text);
    button.addEventListener("click", function () {
      player.currentTime = item.start_s;
      player.play().catch(function () { /* a codec the browser cannot play: the time is still set */ });
    });
    li.appendChild(button);
    return li;
  }

  function render(data) {
    status.textContent = data.status.charAt(0).toUpperCase() + data.status.slice(1);
    status.className = "status status-" + data.status;
    if (data.error) { error.textContent = data.error.message; error.hidden = false; }
    line.hidden = data.finished;
    if (!data.finished) {
      progress.max = Math.max(1, data.frames_total);
      progress.value = data.frames_processed;
      progressText.textContent = data.frames_processed + " of " + (data.frames_total || "?") + " frames";
    }
    timeline.textContent = "";
    var items = data.appearances.map(function (a) { return [a, true]; })
      .concat(data.unknown_tracks.map(function (a) { return [a, false]; }));
    items.sort(function (a, b) { return a[0].start_s - b[0].start_s; });
    items.forEach(function (pair) { timeline.appendChild(entry(pair[0], pair[1])); });
    empty.hidden = !data.finished || items.length > 0 || data.status !== "done";
    // The status badge is rendered by the server too; this marks the moment the timeline is drawn.
    timeline.dataset.rendered = data.status;
    return data.finished;
  }

  function poll() {
    fetch(config.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) { if (!render(data)) window.setTimeout(poll, 1000); })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  cancel.addEventListener("click", function () {
    cancel.disabled = true;
    fetch(config.dataset.cancelUrl, {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf}})
      .then(function (r) { return r.json(); })
      .then(render);
  });
  poll();
})();
