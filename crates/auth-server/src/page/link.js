// The pages that mailed links open: reset a password, confirm an address, confirm or stop an
// email change. Each reads the token from the link, asks for what it needs, calls the API once
// and says what happened in plain words.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let token = new URLSearchParams(location.search).get("token") || "";
  // The token is in memory now: take it out of the address bar and the history.
  history.replaceState(null, "", location.pathname);

  const SPENT = "This link was already used or has expired. Ask for a new one.";
  const PAGES = {
    "reset-password": {
      title: "Choose a new password",
      description: "Enter your new password twice. Every device signed in to your account will be signed out.",
      fields: [
        { name: "new_password", label: "New password", type: "password", autocomplete: "new-password" },
        { name: "confirm", label: "New password again", type: "password", autocomplete: "new-password" },
      ],
      button: "Change password",
      path: "/auth/password/reset/confirm",
      check: (v) => (v.new_password !== v.confirm ? "The two passwords are not the same." : ""),
      body: (v) => ({ token, new_password: v.new_password }),
      done: () => "Your password was changed. You can sign in with it now.",
    },
    "verify-email": {
      title: "Confirm your email address",
      description: "Confirm that this address is yours.",
      fields: [],
      button: "Confirm my address",
      path: "/auth/email/verify/confirm",
      body: () => ({ token }),
      // Confirmed from another browser than the one that asked: whatever was set up on the
      // account before (its password too) is gone, and the owner chooses a password now.
      next: (d) => (d.reset_token ? { page: "reset-password", token: d.reset_token } : null),
      done: () => "Your email address is confirmed. Thank you.",
      then: "Your email address is confirmed. For your safety, everything set up on this account before it was confirmed was removed, its password too: choose a password now.",
    },
    "confirm-email-change": {
      title: "Confirm your new email address",
      description: "Make this address the one your account signs in with. Your other devices will be signed out.",
      fields: [],
      button: "Confirm the change",
      path: "/auth/email/change/confirm",
      body: () => ({ token }),
      refused: "Open this link in the browser where you asked for the change, signed in to your account.",
      done: (d) => "Done: your account's email address is now " + (d.email || "the new one") + ".",
    },
    "cancel-email-change": {
      title: "Stop the email change",
      description: "Someone asked to change your account's email address. If it was not you, stop it here, then change your password.",
      fields: [],
      button: "Stop the change",
      path: "/auth/email/change/cancel",
      body: () => ({ token }),
      done: () => "The change was stopped: your email address stays as it is. Change your password if you did not ask for it.",
    },
  };

  let page = PAGES[document.querySelector("main").dataset.page];
  // Lays the page out for `page` (again when one page leads to another).
  function render(description) {
    // The password policy's rules, where a new password is chosen.
    document.getElementById("hints").hidden = !page.fields.some((f) => f.autocomplete === "new-password");
    document.title = page.title;
    $("title").textContent = page.title;
    $("description").textContent = description || page.description;
    $("submit").textContent = page.button;
    $("fields").replaceChildren();
    for (const f of page.fields) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.name = f.name;
      input.type = f.type;
      input.required = true;
      input.autocomplete = f.autocomplete;
      label.append(f.label, input);
      $("fields").append(label);
    }
  }
  render();

  function show(messages) {
    const list = $("errors");
    list.replaceChildren();
    for (const m of messages) {
      const item = document.createElement("li");
      item.textContent = m;
      list.append(item);
    }
  }

  function finish(text) {
    $("form").hidden = true;
    $("result").textContent = text;
    $("result").hidden = false;
  }

  if (!token) {
    finish("This link is incomplete. Open it again from the message you received.");
    return;
  }

  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData($("form")).entries());
    const problem = page.check ? page.check(values) : "";
    if (problem) { show([problem]); return; }
    $("submit").disabled = true;
    let status = 0;
    let data = {};
    try {
      const response = await fetch(page.path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(page.body(values)),
      });
      status = response.status;
      try { data = await response.json(); } catch (_) { /* no body */ }
    } catch (_) {
      $("submit").disabled = false;
      show(["The server could not be reached. Check your connection and try again."]);
      return;
    }
    $("submit").disabled = false;
    if (status >= 200 && status < 300) {
      const next = page.next ? page.next(data) : null;
      if (next) {
        const said = page.then;
        page = PAGES[next.page];
        token = next.token;
        render(said);
        show([]);
        return;
      }
      finish(page.done(data));
      return;
    }
    if (status === 403 && page.refused) { finish(page.refused); return; }
    if (status === 401 || status === 403 || status === 404) { finish(SPENT); return; }
    if (status === 409) { show(["Another account uses this address now."]); return; }
    if (status === 422 && Array.isArray(data.errors)) { show(data.errors.map((e) => e.message)); return; }
    if (status === 429) { show(["Too many attempts. Wait a few minutes and try again."]); return; }
    show(["Something went wrong on our side. Try again in a moment."]);
  });
}());
