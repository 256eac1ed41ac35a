/* Add photos: the big button on every page and drag-and-drop on a computer.
   Files go up with tus in 8 MiB chunks, one file after another. A network blip is
   waited out; a reloaded page finds its unfinished uploads again (the address of
   each one is kept in localStorage under the file's name, size and date), so adding
   the same file again continues where it stopped. The end is a summary in words. */
(function () {
  "use strict";
  var Picup = window.Picup;
  var input = document.getElementById("add-files");
  var panel = document.getElementById("uploads");
  if (!Picup || !input || !panel) return;
  var text = Picup.text;
  var CHUNK = 8 * 1024 * 1024;
  var TUS = "1.0.0";
  var store = "picup.uploads." + (document.body.dataset.user || "");
  var list = panel.querySelector(".upload-list");
  var title = panel.querySelector(".uploads-title");
  var total = document.getElementById("uploads-total");
  var summary = panel.querySelector(".uploads-summary");
  var closeButton = panel.querySelector(".uploads-close");
  var queue = [];
  var running = false;
  var batch = null;

  /* ------------------------------------------------ remembered uploads */
  function remembered() {
    try { return JSON.parse(window.localStorage.getItem(store) || "{}"); } catch (e) { return {}; }
  }
  function remember(key, url) {
    try {
      var all = remembered();
      if (url) all[key] = { url: url, at: Date.now() }; else delete all[key];
      window.localStorage.setItem(store, JSON.stringify(all));
    } catch (e) { /* private mode: no resuming after a reload, uploads still work */ }
  }
  function fingerprint(file, album) {
    return [file.name, file.size, file.lastModified || 0, album || ""].join("/");
  }

  /* --------------------------------------------------------- requests */
  function b64(value) { return btoa(unescape(encodeURIComponent(value))); }

  /* One request with upload progress (fetch cannot report it). Resolves with the xhr. */
  function send(method, url, headers, body, progress) {
    return Picup.ensureCsrf().then(function (csrf) {
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        xhr.open(method, url);
        xhr.setRequestHeader("Tus-Resumable", TUS);
        xhr.setRequestHeader("X-CSRF-Token", csrf);
        Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
        if (progress && xhr.upload) xhr.upload.onprogress = function (e) { progress(e.loaded); };
        xhr.onload = function () {
          if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
          var error = new Error(xhr.statusText);
          try { error.message = JSON.parse(xhr.responseText).error.message; } catch (e) { /* keep statusText */ }
          error.status = xhr.status;
          reject(error);
        };
        xhr.onerror = xhr.ontimeout = function () {
          var error = new Error(text("network_problem"));
          error.status = 0;
          reject(error);
        };
        xhr.send(body === undefined ? null : body);
      });
    });
  }

  function offsetOf(xhr) { return parseInt(xhr.getResponseHeader("Upload-Offset"), 10); }

  function wait(ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); window.removeEventListener("online", done); resolve(); }
      window.addEventListener("online", done);  /* the network is back: try at once */
    });
  }

  /* Errors worth waiting out: no answer, a server error, or the upload out of step. */
  function passing(error) { return !error.status || error.status >= 500 || error.status === 409 || error.status === 423; }

  /* Where an unfinished upload of this file stands, or null to start afresh. */
  function resumeFrom(job) {
    var known = remembered()[job.key];
    if (!known) return Promise.resolve(null);
    return send("HEAD", known.url, {}).then(function (xhr) {
      return { url: known.url, offset: offsetOf(xhr) };
    }, function (error) {
      if (passing(error) && error.status !== 409) throw error;
      remember(job.key, null);  /* gone or expired: start again */
      return null;
    });
  }

  function create(job) {
    var meta = "filename " + b64(job.file.name) + ",lastModified " + b64(String(job.file.lastModified || ""));
    if (job.album) meta += ",album " + b64(String(job.album));
    return send("POST", "/api/v1/uploads", { "Upload-Length": String(job.file.size), "Upload-Metadata": meta })
      .then(function (xhr) {
        var url = xhr.getResponseHeader("Location");
        remember(job.key, url);
        return { url: url, offset: 0 };
      });
  }

  function upload(job) {
    var failures = 0;
    function attempt() {
      return resumeFrom(job).then(function (found) { return found || create(job); }).then(function (at) {
        job.resumed = at.offset > 0;
        return chunks(at.url, at.offset);
      }).catch(function (error) {
        if (!passing(error) || ++failures > 40) throw error;
        job.show(text("waiting_for_network"));
        return wait(Math.min(30000, 1000 * failures)).then(attempt);
      });
    }
    function chunks(url, offset) {
      job.progress(offset);
      if (offset >= job.file.size && job.file.size > 0) return finished(url);
      var headers = { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" };
      return send("PATCH", url, headers, job.file.slice(offset, offset + CHUNK), function (loaded) {
        job.progress(offset + loaded);
      }).then(function (xhr) {
        failures = 0;
        var next = offsetOf(xhr);
        if (next >= job.file.size) return outcome(xhr);
        return chunks(url, next);
      });
    }
    function finished(url) {
      return send("HEAD", url, {}).then(outcome);
    }
    function outcome(xhr) {
      remember(job.key, null);
      return { duplicate: xhr.getResponseHeader("Picup-Duplicate") === "true" };
    }
    return attempt().catch(function (error) {
      if (error.status && error.status !== 409) remember(job.key, null);
      throw error;
    });
  }

  /* ---------------------------------------------------------- the panel */
  function Job(file, album) {
    var self = this;
    self.file = file;
    self.album = album;
    self.key = fingerprint(file, album);
    self.sent = 0;
    var row = document.createElement("li");
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    self.bar = document.createElement("progress");
    self.bar.max = Math.max(file.size, 1);
    self.bar.value = 0;
    self.bar.setAttribute("aria-label", file.name);
    self.state = document.createElement("span");
    self.state.className = "upload-state";
    self.state.textContent = text("waiting");
    row.appendChild(name);
    row.appendChild(self.bar);
    row.appendChild(self.state);
    list.appendChild(row);
    self.row = row;
  }
  Job.prototype.progress = function (sent) {
    this.sent = Math.min(sent, this.file.size);
    this.bar.value = this.sent;
    this.state.textContent = text(this.resumed ? "continuing" : "sending",
                                  { percent: Math.floor(100 * this.sent / Math.max(this.file.size, 1)) });
    showTotal();
  };
  Job.prototype.show = function (words) { this.state.textContent = words; };

  function showTotal() {
    var size = 0, sent = 0;
    batch.jobs.forEach(function (job) { size += job.file.size; sent += job.sent; });
    total.max = Math.max(size, 1);
    total.value = sent;
    title.textContent = text("adding_count", { done: batch.done, count: batch.jobs.length });
  }

  function finish() {
    var parts = [];
    if (batch.added) parts.push(text("summary_added", { count: batch.added }));
    if (batch.duplicates) parts.push(text("summary_duplicates", { count: batch.duplicates }));
    if (batch.failed) parts.push(text("summary_failed", { count: batch.failed }));
    if (batch.skipped) parts.push(text("summary_left_out", { count: batch.skipped }));
    title.textContent = text("adding_finished");
    summary.textContent = parts.join(" · ");
    closeButton.hidden = false;
    var added = batch.added;
    batch = null;
    if (added || parts.length) Picup.refresh();
  }

  function next() {
    if (!queue.length) { running = false; finish(); return; }
    running = true;
    var job = queue.shift();
    job.show(text("sending", { percent: 0 }));
    var sending = job.file.unreadable ? Promise.reject(new Error(text("file_unreadable"))) : upload(job);
    sending.then(function (result) {
      job.progress(job.file.size);
      if (result.duplicate) batch.duplicates += 1; else batch.added += 1;
      job.row.className = "ok";
      job.show(text(result.duplicate ? "already_there_short" : "added_short"));
    }, function (error) {
      batch.failed += 1;
      job.row.className = "failed";
      job.show(text("not_added_short", { reason: error.message }));
    }).then(function () {
      batch.done += 1;
      showTotal();
      next();
    });
  }

  /* What only goes with a photo or with the system (an iPhone's .AAE edits, Takeout's
     .json, a camera's .THM preview, Thumbs.db, .DS_Store…), as `picup import` leaves out:
     a whole folder dropped on the page would otherwise end in "could not be added". */
  var leftOutNames = (input.dataset.leftOut || "").split(" ");
  function leftOut(file) {
    var name = file.name.toLowerCase();
    var dot = name.lastIndexOf(".");
    return name.charAt(0) === "." || leftOutNames.indexOf(name) !== -1 ||
      (dot > 0 && leftOutNames.indexOf(name.slice(dot)) !== -1);
  }

  function add(files) {
    var skipped = files.filter(leftOut).length;
    files = files.filter(function (file) { return !leftOut(file); });
    if (!files.length && !skipped) return;
    var album = input.dataset.album ? parseInt(input.dataset.album, 10) : null;
    if (!batch) {
      batch = { jobs: [], done: 0, added: 0, duplicates: 0, failed: 0, skipped: 0 };
      list.textContent = "";
      summary.textContent = "";
      closeButton.hidden = true;
    }
    batch.skipped += skipped;
    panel.hidden = false;
    files.forEach(function (file) {
      var job = new Job(file, album);
      batch.jobs.push(job);
      queue.push(job);
    });
    showTotal();
    if (!running) next();  /* with nothing to send, straight to the summary */
  }

  input.addEventListener("change", function () {
    var files = Array.prototype.slice.call(input.files);
    input.value = "";
    add(files);
  });
  closeButton.addEventListener("click", function () { panel.hidden = true; input.focus(); });

  /* Leaving while files are still going up loses nothing, but ask first. */
  window.addEventListener("beforeunload", function (event) {
    if (running) { event.preventDefault(); event.returnValue = ""; }
  });

  /* Unfinished uploads from before a reload: say so, in words. */
  var waiting = Object.keys(remembered()).filter(function (key) {
    return Date.now() - remembered()[key].at < 24 * 3600 * 1000;
  });
  if (waiting.length) {
    panel.hidden = false;
    title.textContent = text("unfinished_uploads", { count: waiting.length });
    summary.textContent = text("unfinished_explained");
    closeButton.hidden = false;
  }

  /* ------------------------------------------------------ drag and drop */
  var zone = document.getElementById("dropzone");
  var depth = 0;
  function carriesFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }
  document.addEventListener("dragenter", function (event) {
    if (!carriesFiles(event)) return;
    depth += 1;
    zone.hidden = false;
  });
  document.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  document.addEventListener("dragover", function (event) {
    if (carriesFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    zone.hidden = true;
    dropped(event.dataTransfer).then(add);
  });

  /* A dropped folder (a phone's DCIM, a memory card, a Takeout) is opened, and the folders
     in it, as `picup import` walks a tree: hidden folders and the system's (a Synology's
     @eaDir, a USB disk's $RECYCLE.BIN…) are passed over. The entries must be taken while
     the drop event lasts; reading them comes after. */
  var skippedFolders = (input.dataset.skippedFolders || "").split("/");
  function dropped(transfer) {
    var items = Array.prototype.filter.call(transfer.items || [], function (item) { return item.kind === "file"; });
    var entries = items.map(function (item) { return item.webkitGetAsEntry ? item.webkitGetAsEntry() : null; });
    if (!entries.length || entries.some(function (entry) { return !entry; })) {
      return Promise.resolve(Array.prototype.slice.call(transfer.files));  /* no folders here */
    }
    var found = [];
    return Promise.all(entries.map(function (entry) { return walk(entry, found); })).then(function () {
      found.sort(function (a, b) { return a.path < b.path ? -1 : a.path > b.path ? 1 : 0; });
      return found.map(function (each) { return each.file; });
    });
  }

  function walk(entry, found) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(function (file) {
          found.push({ path: entry.fullPath, file: file });
          resolve();
        }, function () {
          var file = new File([], entry.name);
          file.unreadable = true;  /* shown as not added, with the reason */
          found.push({ path: entry.fullPath, file: file });
          resolve();
        });
      });
    }
    var name = entry.name.toLowerCase();
    if (name.charAt(0) === "." || skippedFolders.indexOf(name) !== -1) return Promise.resolve();
    var reader = entry.createReader();
    return new Promise(function (resolve) {
      function more() {  /* a folder comes in batches of about 100 */
        reader.readEntries(function (batch) {
          if (!batch.length) return resolve();
          Promise.all(batch.map(function (child) { return walk(child, found); })).then(more);
        }, function () {
          var file = new File([], entry.name);
          file.unreadable = true;
          found.push({ path: entry.fullPath, file: file });
          resolve();
        });
      }
      more();
    });
  }

  Picup.addFiles = add;
})();
