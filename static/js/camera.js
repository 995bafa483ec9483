// The camera page: the browser's camera, a frame to the server a few times a second (a JPEG
// of at most max-side px), at most MAX_IN_FLIGHT frames on their way (a frame is dropped,
// never queued, when the server is slower), and the answer's boxes, names and similarities
// drawn on a canvas over the video.
(function () {
  "use strict";
  var MAX_IN_FLIGHT = 2;
  var INTERVAL_MS = 200; // at most 5 frames a second are tried
  var config = document.getElementById("camera-config");
  var frameUrl = config.dataset.frameUrl;
  var maxSide = parseInt(config.dataset.maxSide, 10) || 640;
  var csrf = document.querySelector("#camera-csrf input[name=csrfmiddlewaretoken]").value;
  var video = document.getElementById("camera-video");
  var overlay = document.getElementById("camera-overlay");
  var message = document.getElementById("camera-message");
  var pauseButton = document.getElementById("camera-pause");
  var stats = document.getElementById("camera-stats");
  var list = document.getElementById("camera-faces");
  var grab = document.createElement("canvas");
  var stream = "cam-" + Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
  var inFlight = 0, paused = false, sent = 0, answered = 0, dropped = 0, lastRtt = 0, timer = null;

  function show(text) {
    message.textContent = text;
    message.hidden = false;
  }

  function label(face) {
    if (face.state === "known") return face.member;
    if (face.state === "unknown") return "unknown";
    return "…";
  }

  function draw(answer) {
    var width = video.videoWidth, height = video.videoHeight;
    overlay.width = width;
    overlay.height = height;
    var ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    var scale = width / answer.width;
    list.textContent = "";
    answer.faces.forEach(function (face) {
      var x = face.box[0] * scale, y = face.box[1] * scale, w = face.box[2] * scale, h = face.box[3] * scale;
      var colour = face.state === "known" ? "#1a7f37" : face.state === "unknown" ? "#cf222e" : "#9a6700";
      ctx.lineWidth = Math.max(2, width / 320);
      ctx.strokeStyle = colour;
      ctx.setLineDash(face.state === "known" ? [] : [8, 6]);
      ctx.strokeRect(x, y, w, h);
      var text = label(face) + (face.similarity !== null ? " " + face.similarity.toFixed(2) : "");
      var size = Math.max(14, Math.round(width / 40));
      ctx.font = size + "px sans-serif";
      ctx.setLineDash([]);
      ctx.fillStyle = colour;
      var textWidth = ctx.measureText(text).width + 8;
      ctx.fillRect(x, Math.max(0, y - size - 6), textWidth, size + 6);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 4, Math.max(size, y - 5));
      var item = document.createElement("li");
      item.className = "face " + face.state;
      item.dataset.track = face.track;
      item.dataset.x = String(face.box[0] + face.box[2] / 2);
      item.textContent = text;
      list.appendChild(item);
    });
  }

  function send() {
    if (paused || video.readyState < 2 || !video.videoWidth) return;
    if (inFlight >= MAX_IN_FLIGHT) { dropped += 1; return; }
    var scale = Math.min(1, maxSide / Math.max(video.videoWidth, video.videoHeight));
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    inFlight += 1;
    var started = performance.now();
    grab.toBlob(function (blob) {
      var body = new FormData();
      body.append("stream", stream);
      body.append("frame", blob, "frame.jpg");
      sent += 1;
      fetch(frameUrl, {method: "POST", body: body, headers: {"X-CSRFToken": csrf}, credentials: "same-origin"})
        .then(function (response) {
          return response.json().then(function (data) { return {ok: response.ok, status: response.status, data: data}; });
        })
        .then(function (reply) {
          if (!reply.ok) {
            if (reply.status !== 429) show(reply.data.error ? reply.data.error.message : "The server refused the frame.");
            return;
          }
          message.hidden = true;
          answered += 1;
          lastRtt = performance.now() - started;
          if (!paused) draw(reply.data);
        })
        .catch(function () { show("The server cannot be reached."); })
        .finally(function () {
          inFlight -= 1;
          stats.textContent = answered + " frame(s) answered, " + dropped + " dropped, last round trip " +
            Math.round(lastRtt) + " ms";
        });
    }, "image/jpeg", 0.85);
  }

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    if (paused) { video.pause(); } else { video.play(); }
  });

  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    show("This browser gives no access to a camera (or the page is not served over HTTPS).");
    return;
  }
  navigator.mediaDevices.getUserMedia({video: {width: {ideal: 640}, height: {ideal: 480}}, audio: false})
    .then(function (media) {
      video.srcObject = media;
      pauseButton.disabled = false;
      timer = window.setInterval(send, INTERVAL_MS);
    })
    .catch(function (error) {
      if (error && (error.name === "NotAllowedError" || error.name === "SecurityError")) {
        show("The browser denied the camera: allow it for this site and reload the page.");
      } else if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError")) {
        show("No camera was found on this device.");
      } else {
        show("The camera could not be started" + (error && error.message ? ": " + error.message : "."));
      }
    });
  window.addEventListener("pagehide", function () { if (timer) window.clearInterval(timer); });
})();
