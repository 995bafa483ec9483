// The upload page: pick or drop photos, see previews, send each one with its own progress bar.
// Without this script the form still works (all photos in one post).
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("id_photos");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("uploads");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var maxMb = form.dataset.maxMb;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var types = ["image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff"];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) node.textContent = text;
    return node;
  }

  function problem(file) {
    if (file.type && types.indexOf(file.type) < 0) return file.name + " is not a photo (" + file.type + ").";
    if (!file.type && !/\.(jpe?g|png|webp|bmp|gif|tiff?)$/i.test(file.name)) return file.name + " is not a photo.";
    if (file.size > maxBytes) return file.name + " is " + (file.size / 1e6).toFixed(1) + " MB; the limit is " + maxMb + " MB.";
    if (!file.size) return file.name + " is empty.";
    return null;
  }

  function send(file) {
    var item = el("li", {"class": "upload"});
    var preview = el("img", {alt: "Preview of " + file.name, "class": "preview"});
    var name = el("span", {"class": "name"}, file.name);
    var bar = el("progress", {max: "100", value: "0", "aria-label": "Upload of " + file.name});
    var note = el("span", {"class": "note", role: "status"});
    item.append(preview, name, bar, note);
    list.prepend(item);
    var bad = problem(file);
    if (bad) {
      preview.remove(); bar.remove();
      item.classList.add("failed"); note.textContent = bad;
      return;
    }
    preview.src = URL.createObjectURL(file);
    var data = new FormData();
    data.append("photos", file);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201) {
        bar.value = 100;
        item.classList.add("queued");
        note.textContent = "";
        note.append("Queued: ", el("a", {href: body.url, "class": "job-link"}, "job " + body.id));
      } else {
        item.classList.add("failed");
        note.textContent = (body.error && body.error.message) || ("The upload failed (" + xhr.status + ").");
      }
    };
    xhr.onerror = function () { item.classList.add("failed"); note.textContent = "The upload failed: no connection."; };
    xhr.send(data);
  }

  function sendAll(files) { Array.prototype.forEach.call(files, send); }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (input.files.length) sendAll(input.files);
    input.value = "";
  });
  input.addEventListener("change", function () {
    if (input.files.length) sendAll(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) { sendAll(event.dataTransfer.files); });
})();
