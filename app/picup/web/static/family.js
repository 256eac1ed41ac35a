/* The family page (administrator only): everyone in the family, which albums each
   person can see, adding a member, setting a new password for one who forgot, and
   turning off two-step sign-in for one who lost their phone. */
(function () {
  "use strict";
  var Picup = window.Picup;
  var listNode = document.getElementById("family");
  if (!Picup || !listNode) return;
  var api = Picup.api, text = Picup.text, el = Picup.el;
  var notice = document.getElementById("family-notice");
  var reset = document.getElementById("reset-dialog");
  var resetting = null;

  function roleWords(role) {
    return text(role === "owner" ? "role_owner" : role === "add" ? "role_add" : "role_view");
  }

  function show() {
    /* the albums the administrator can open themselves get a link; the others are names only */
    var mine = {};
    return api("GET", "/api/v1/albums").then(function (own) {
      own.data.albums.forEach(function (album) { mine[album.id] = true; });
      return api("GET", "/api/v1/users");
    }).then(function (result) {
      listNode.textContent = "";
      result.data.users.forEach(function (user) {
        var item = el("li", "person");
        var name = el("h2", null, user.display_name);
        item.appendChild(name);
        item.appendChild(el("p", "hint", text(user.is_admin ? "signs_in_as_admin" : "signs_in_as",
                                             { username: user.username })));
        var albums = user.albums || [];
        if (albums.length) {
          item.appendChild(el("p", null, text("can_see")));
          var list = el("ul", "can-see");
          albums.forEach(function (album) {
            var row = el("li");
            if (mine[album.id]) {
              var link = el("a", null, album.title);
              link.href = "/albums/" + album.id;
              row.appendChild(link);
            } else {
              row.appendChild(el("span", null, album.title));
            }
            row.appendChild(document.createTextNode(" · " + roleWords(album.role)));
            list.appendChild(row);
          });
          item.appendChild(list);
        } else {
          item.appendChild(el("p", null, text("no_albums_yet")));
        }
        var button = el("button", null, text("reset_password"));
        button.type = "button";
        button.setAttribute("aria-label", text("reset_password_for", { name: user.display_name }));
        button.addEventListener("click", function () {
          resetting = user;
          reset.querySelector("h2").textContent = text("reset_password_for", { name: user.display_name });
          reset.querySelector("input").value = "";
          reset.querySelector(".error").hidden = true;
          reset.showModal();
        });
        item.appendChild(button);
        if (user.two_step) {  /* a member who lost their phone */
          var off = el("button", null, text("two_step_reset"));
          off.type = "button";
          off.setAttribute("aria-label", text("two_step_reset_for", { name: user.display_name }));
          off.addEventListener("click", function () {
            api("DELETE", "/api/v1/users/" + user.id + "/totp").then(function () {
              notice.textContent = text("two_step_was_reset", { name: user.display_name });
              return show();
            }, function (e) { notice.textContent = e.message; });
          });
          item.appendChild(off);
        }
        listNode.appendChild(item);
      });
    });
  }

  reset.querySelector("form").addEventListener("submit", function (event) {
    if (event.submitter && event.submitter.value === "cancel") return;
    event.preventDefault();
    var error = reset.querySelector(".error");
    api("PATCH", "/api/v1/users/" + resetting.id, { password: reset.querySelector("input").value }).then(function () {
      Picup.closeDialog(reset);
      notice.textContent = text("password_was_reset", { name: resetting.display_name });
    }, function (e) { error.textContent = e.message; error.hidden = false; });
  });

  var form = document.getElementById("add-member");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var error = form.querySelector(".error");
    error.hidden = true;
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (node) { if (node.name) fields[node.name] = node.value; });
    api("POST", "/api/v1/users", fields).then(function (result) {
      form.reset();
      notice.textContent = text("member_added", { name: result.data.user.display_name });
      return show();
    }, function (e) { error.textContent = e.message; error.hidden = false; });
  });

  Picup.ensureCsrf().then(show);
})();
