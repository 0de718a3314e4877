// Renders any onboarding pipeline from the server's client hints alone: no per-step code.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "onboarding_session";
  let hint = null;
  let countdown = null;

  async function call(path, body) {
    const response = await fetch("/onboarding/" + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { /* empty body */ }
    return { status: response.status, data };
  }

  function inputType(kind) {
    return { email: "email", password: "password", checkbox: "checkbox" }[kind] || "text";
  }

  function render(result) {
    if (result.status === "completed") { return finish(result); }
    hint = result.client_hint;
    $("title").textContent = hint.title;
    $("description").textContent = hint.description;
    const fields = $("fields");
    fields.replaceChildren();
    for (const f of hint.fields) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.name = f.name;
      input.type = inputType(f.type);
      input.required = f.required;
      if (f.type === "code") { input.inputMode = "numeric"; input.autocomplete = "one-time-code"; }
      if (f.name in (hint.extra || {}) && typeof hint.extra[f.name] === "string") { input.value = hint.extra[f.name]; }
      if (input.type === "checkbox") { label.append(input, " " + f.label); }
      else { label.append(f.label, input); }
      fields.append(label);
    }
    const extra = $("extra");
    extra.replaceChildren();
    const shown = hint.extra || {};
    for (const [key, value] of Object.entries(shown)) {
      if (hint.fields.some((f) => f.name === key) || key === "email" || key === "resend_available_in") { continue; }
      const div = document.createElement("div");
      div.dataset.key = key;
      if (key.endsWith("_svg") && typeof value === "string") {
        div.className = "extra-image";
        div.innerHTML = value; // an image the server drew (a QR code)
      } else if (key === "otpauth_uri") {
        const a = Object.assign(document.createElement("a"), { href: value, textContent: "Open in your authenticator app" });
        div.append(a);
      } else if (key === "secret") {
        div.className = "muted";
        div.append("Can't scan it? Enter this key: ", Object.assign(document.createElement("code"), { textContent: value }));
      } else {
        div.className = "extra-text";
        div.textContent = String(value);
      }
      extra.append(div);
    }
    // A code step: a button for a new code, counting down while the server's cooldown runs.
    clearInterval(countdown);
    const resend = $("resend");
    resend.hidden = !("resend_available_in" in shown);
    if (!resend.hidden) {
      let wait = Number(shown.resend_available_in) || 0;
      const tick = () => {
        resend.disabled = wait > 0;
        resend.textContent = wait > 0 ? "Send a new code (" + wait + " s)" : "Send a new code";
        wait -= 1;
        if (wait < 0) { clearInterval(countdown); }
      };
      tick();
      countdown = setInterval(tick, 1000);
    }
    $("skip").hidden = !hint.skippable;
    const errors = $("errors");
    errors.replaceChildren();
    for (const message of Object.values(result.errors || {})) {
      const li = document.createElement("li");
      li.textContent = message;
      errors.append(li);
    }
    if (result.output && result.output.recovery_codes) {
      const notice = $("notice");
      notice.hidden = false;
      notice.textContent = "Recovery codes (shown once, keep them safe):\n" + result.output.recovery_codes.join("\n");
    }
  }

  async function finish(result) {
    sessionStorage.removeItem(KEY);
    if (window.AuthKit) { window.AuthKit.session.set(result); }
    clearInterval(countdown);
    $("step").hidden = true;
    $("signin-link").hidden = true;
    $("title").textContent = "Welcome";
    $("description").textContent = "";
    const me = await fetch("/auth/me", { headers: { authorization: "Bearer " + result.access_token } });
    const user = await me.json();
    $("me").textContent = user.email;
    $("done").hidden = false;
  }

  function failure(status, data) {
    if (status === 404 || status === 410 || status === 409) {
      sessionStorage.removeItem(KEY);
      const messages = { 404: "This sign-up link is no longer valid.", 410: "This sign-up expired.", 409: "Already done." };
      $("errors").replaceChildren(Object.assign(document.createElement("li"), { textContent: messages[status] + " Start again." }));
      hint = null;
      return;
    }
    const li = document.createElement("li");
    const plain = {
      0: "The server could not be reached. Check your connection and try again.",
      401: "That did not work. Check what you entered and try again.",
      429: "Too many attempts. Wait a few minutes and try again.",
    };
    if (status === 422 && data && Array.isArray(data.errors) && data.errors.length) {
      li.textContent = data.errors.map((e) => e.message).join(" ");
    } else {
      li.textContent = plain[status] || "Something went wrong on our side. Try again in a moment.";
    }
    $("errors").replaceChildren(li);
  }

  async function submit(skip) {
    const form = $("step");
    const body = {};
    for (const input of form.querySelectorAll("#fields input")) {
      body[input.name] = input.type === "checkbox" ? input.checked : input.value;
    }
    let response;
    if (!hint) {
      response = await call("start", { email: body.email || "" });
      if (response.status === 200) { sessionStorage.setItem(KEY, response.data.session_token); }
    } else {
      body.session_token = sessionStorage.getItem(KEY);
      if (skip) { body.skip = true; }
      response = await call("advance", body);
    }
    if (response.status === 200) { render(response.data); } else { failure(response.status, response.data); }
  }

  $("step").addEventListener("submit", (e) => { e.preventDefault(); submit(false); });
  $("skip").addEventListener("click", () => submit(true));
  $("resend").addEventListener("click", async () => {
    const response = await call("advance", { session_token: sessionStorage.getItem(KEY), resend: true });
    if (response.status === 200) { render(response.data); } else { failure(response.status, response.data); }
  });

  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    call("resume", { session_token: saved }).then((r) => {
      if (r.status === 200) { render(r.data); } else { sessionStorage.removeItem(KEY); }
    });
  }
})();
