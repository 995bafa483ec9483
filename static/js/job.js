// The job page: boxes and names over the photo (SVG), a table of faces, polling until done.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var urls = document.getElementById("urls");
  var overlay = document.getElementById("overlay");
  var table = document.getElementById("faces-table");
  var body = document.getElementById("faces-body");
  var statusEl = document.getElementById("job-status");
  var errorEl = document.getElementById("job-error");
  var summary = document.getElementById("job-summary");
  var members = JSON.parse(document.getElementById("members-data").textContent);
  var csrf = document.querySelector("#enrol-template input[name=csrfmiddlewaretoken]").value;
  var labels = {queued: "Queued", running: "Running", done: "Done", failed: "Failed"};

  function name(face) { return face.member_id ? face.member : "Unknown"; }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) node.textContent = text;
    return node;
  }

  function cell(row, content) {
    var td = document.createElement("td");
    if (typeof content === "string") td.textContent = content; else if (content) td.append(content);
    row.append(td);
  }

  function enrolForm(index) {
    var form = document.createElement("form");
    form.method = "post";
    form.className = "inline";
    form.action = urls.dataset.enrol.replace(/\/0\/enrol$/, "/" + index + "/enrol");
    var token = document.createElement("input");
    token.type = "hidden"; token.name = "csrfmiddlewaretoken"; token.value = csrf;
    var id = "enrol-" + index;
    var label = document.createElement("label");
    label.htmlFor = id; label.className = "sr-only"; label.textContent = "Face " + (index + 1) + " is";
    var select = document.createElement("select");
    select.name = "member"; select.id = id; select.required = true;
    select.append(new Option("this is…", ""));
    members.forEach(function (m) { select.append(new Option(m.display_name, m.id)); });
    var button = document.createElement("button");
    button.type = "submit"; button.textContent = "Add face";
    form.append(token, label, select, button);
    return form;
  }

  function render(job) {
    statusEl.textContent = labels[job.status] || job.status;
    statusEl.className = "status status-" + job.status;
    if (job.status === "failed") {
      errorEl.hidden = false;
      errorEl.textContent = (job.error && job.error.message) || "The job failed.";
    }
    while (overlay.firstChild) overlay.firstChild.remove();
    while (body.firstChild) body.firstChild.remove();
    var stroke = Math.max(2, Math.round(Math.max(job.width || 0, job.height || 0) / 300));
    job.faces.forEach(function (face, index) {
      var known = !!face.member_id;
      var b = face.box;
      var group = svg("g", {"class": known ? "face known" : "face unknown", "data-index": index});
      group.append(svg("rect", {x: b[0], y: b[1], width: b[2], height: b[3], "stroke-width": stroke}));
      var size = Math.max(12, Math.round(b[2] / 6));
      group.append(svg("text", {x: b[0], y: Math.max(size, b[1] - stroke * 2), "font-size": size},
                       (index + 1) + " " + name(face)));
      overlay.append(group);
      var row = document.createElement("tr");
      row.className = known ? "known" : "unknown";
      cell(row, String(index + 1));
      cell(row, name(face));
      cell(row, face.similarity === null ? "–" : face.similarity.toFixed(3));
      cell(row, face.score.toFixed(3));
      if (members.length) cell(row, known ? "" : enrolForm(index));
      body.append(row);
    });
    table.hidden = job.faces.length === 0;
    if (job.status === "done") {
      var named = job.faces.filter(function (f) { return f.member_id; }).length;
      summary.textContent = job.faces.length + " face(s), " + named + " known" +
        (job.timings && job.timings.total ? ", result " + job.timings.total.toFixed(1) + " s after the upload." : ".");
    } else if (!job.finished) {
      summary.textContent = "Waiting for a worker… this page updates by itself.";
    } else {
      summary.textContent = "";
    }
  }

  var delay = 500;
  function poll() {
    fetch(urls.dataset.status, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (job) {
        render(job);
        if (!job.finished) { delay = Math.min(delay * 1.3, 3000); setTimeout(poll, delay); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }

  var initial = JSON.parse(document.getElementById("job-data").textContent);
  render(initial);
  if (!initial.finished) setTimeout(poll, delay);
})();
