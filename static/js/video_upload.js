// The video list's upload form: the file goes to POST /api/v1/videos with the session and its
// CSRF token (the API's size limit applies, not the pages'); the page then opens the video.
(function () {
  "use strict";
  var form = document.getElementById("video-upload");
  var input = document.getElementById("id_video");
  var progress = document.getElementById("video-progress");
  var error = document.getElementById("video-upload-error");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var maxBytes = parseInt(form.dataset.maxBytes, 10);

  function fail(text) {
    error.textContent = text;
    error.hidden = false;
    progress.hidden = true;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    var file = input.files[0];
    if (!file) { fail("Choose a video first."); return; }
    if (file.size > maxBytes) { fail(file.name + " is over the limit of " + Math.round(maxBytes / 1e6) + " MB."); return; }
    var body = new FormData();
    body.append("video", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.url);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { progress.hidden = false; progress.value = Math.round(100 * e.loaded / e.total); }
    });
    xhr.addEventListener("load", function () {
      var data = {};
      try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && data.id) {
        window.location.href = "/videos/" + data.id + "/";
      } else {
        fail(data.error ? data.error.message : "The upload failed (" + xhr.status + ").");
      }
    });
    xhr.addEventListener("error", function () { fail("The server cannot be reached."); });
    xhr.send(body);
  });
})();
