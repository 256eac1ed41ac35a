/* Settings: the language of the pages and the password. */
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
})();
