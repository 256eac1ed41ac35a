/* Settings: the language of the pages, the password, two-step sign-in and the devices
   where the person is signed in. */
(function () {
  "use strict";
  var Picup = window.Picup;
  var languageForm = document.getElementById("language-form");
  if (!Picup || !languageForm) return;
  var notice = document.getElementById("settings-notice");

  languageForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = languageForm.elements.language.value || null;
    Picup.ensureCsrf().then(function () {
      return Picup.api("PATCH", "/api/v1/me", { language: value });
    }).then(function () { window.location.reload(); }, function (error) { notice.textContent = error.message; });
  });

  var passwordForm = document.getElementById("password-form");
  passwordForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var error = passwordForm.querySelector(".error");
    error.hidden = true;
    Picup.ensureCsrf().then(function () {
      return Picup.api("POST", "/api/v1/me/password", {
        current_password: passwordForm.elements.current_password.value,
        new_password: passwordForm.elements.new_password.value
      });
    }).then(function () {
      passwordForm.reset();
      notice.textContent = Picup.text("password_changed");
    }, function (e) { error.textContent = e.message; error.hidden = false; });
  });

  /* ------------------------------------------------ two-step sign-in */
  var box = document.getElementById("two-step");
  function part(name) { return box.querySelector(".two-step-" + name); }
  var showError = Picup.showError;

  function twoStep() {
    return Picup.api("GET", "/api/v1/me/totp").then(function (result) {
      var on = result.data.enabled;
      part("required").hidden = !(result.data.required && !on);
      part("state").textContent = on ? Picup.text("two_step_on", { count: result.data.recovery_codes_left })
                                     : Picup.text("two_step_off");
      box.querySelector("[data-action=two-step-start]").hidden = on;
      part("manage").hidden = !on;
      if (on) part("setup").hidden = true;
    });
  }

  box.addEventListener("click", function (event) {
    var action = event.target.getAttribute("data-action");
    var manageError = part("manage").querySelector(".error");
    var password = document.getElementById("two-step-password");
    if (action === "two-step-start") {
      Picup.api("POST", "/api/v1/me/totp").then(function (result) {
        part("secret").textContent = result.data.secret.replace(/(.{4})/g, "$1 ").trim();
        part("qr").src = "/api/v1/me/totp/qr?t=" + Date.now();
        part("setup").hidden = false;
        part("codes").hidden = true;
        event.target.hidden = true;
        document.getElementById("two-step-code").focus();
      }, function (e) { notice.textContent = e.message; });
    } else if (action === "two-step-confirm") {
      var error = part("setup").querySelector(".error");
      error.hidden = true;
      Picup.api("POST", "/api/v1/me/totp/confirm", { code: document.getElementById("two-step-code").value })
        .then(function (result) { showCodes(result.data.recovery_codes); return twoStep(); },
              function (e) { showError(error, e); });
    } else if (action === "two-step-new-codes" || action === "two-step-off") {
      manageError.hidden = true;
      var off = action === "two-step-off";
      Picup.api(off ? "DELETE" : "POST", off ? "/api/v1/me/totp" : "/api/v1/me/totp/recovery-codes",
                { password: password.value }).then(function (result) {
        password.value = "";
        if (off) {
          part("codes").hidden = true;
          notice.textContent = Picup.text("two_step_turned_off");
        } else {
          showCodes(result.data.recovery_codes);
        }
        return twoStep();
      }, function (e) { showError(manageError, e); });
    } else if (action === "print") {
      window.print();
    }
  });

  function showCodes(codes) {
    var list = part("codes").querySelector("ol");
    list.textContent = "";
    codes.forEach(function (code) {
      var item = document.createElement("li");
      var words = document.createElement("code");
      words.textContent = code;
      item.appendChild(words);
      list.appendChild(item);
    });
    part("setup").hidden = true;
    part("codes").hidden = false;
    part("codes").querySelector("button").focus();
  }

  /* ------------------------------------------------ devices */
  var devices = document.getElementById("devices");

  /* "Chrome on Android" from a User-Agent: enough to tell one's own devices apart. */
  function deviceName(agent) {
    var browsers = [["Edg/", "Edge"], ["SamsungBrowser", "Samsung Internet"], ["Firefox/", "Firefox"],
                    ["Chrome/", "Chrome"], ["Safari/", "Safari"]];
    var systems = [["iPhone", "iPhone"], ["iPad", "iPad"], ["Android", "Android"], ["Windows", "Windows"],
                   ["Mac OS X", "Mac"], ["CrOS", "ChromeOS"], ["Linux", "Linux"]];
    function find(list) {
      for (var i = 0; i < list.length; i++) if (agent.indexOf(list[i][0]) >= 0) return list[i][1];
      return null;
    }
    var browser = find(browsers), system = find(systems);
    if (browser && system) return Picup.text("device_on", { browser: browser, system: system });
    return browser || system || Picup.text("device_unknown");
  }

  function listDevices() {
    var when = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: "medium", timeStyle: "short" });
    return Picup.api("GET", "/api/v1/sessions").then(function (result) {
      devices.textContent = "";
      result.data.sessions.forEach(function (device) {
        var item = document.createElement("li");
        item.className = "device";
        var name = document.createElement("strong");
        name.textContent = deviceName(device.user_agent || "");
        item.appendChild(name);
        var about = document.createElement("span");
        about.className = "hint";
        about.textContent = device.current ? Picup.text("this_device")
                                           : Picup.text("device_last_used", { time: when.format(new Date(device.last_seen_at)) });
        item.appendChild(about);
        if (!device.current) {
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = Picup.text("device_sign_out");
          button.setAttribute("aria-label", Picup.text("device_sign_out_named", { name: name.textContent }));
          button.addEventListener("click", function () {
            Picup.api("DELETE", "/api/v1/sessions/" + device.id).then(listDevices, function (e) {
              notice.textContent = e.message;
            });
          });
          item.appendChild(button);
        }
        devices.appendChild(item);
      });
    });
  }

  document.querySelector("[data-action=sign-out-everywhere]").addEventListener("click", function () {
    Picup.api("DELETE", "/api/v1/sessions").then(function () { window.location.assign("/signin"); },
                                                 function (e) { notice.textContent = e.message; });
  });

  twoStep();
  listDevices();
})();
