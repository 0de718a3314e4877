// Renders any onboarding pipeline from the server's client hints alone: no per-step code.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "onboarding_session";
  let hint = null;

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
    for (const [key, value] of Object.entries(hint.extra || {})) {
      if (hint.fields.some((f) => f.name === key)) { continue; }
      const div = document.createElement("div");
      div.dataset.key = key;
      if (key.endsWith("_svg") && typeof value === "string") {
        div.className = "extra-image";
        div.innerHTML = value; // an image the server drew (a QR code)
      } else {
        div.className = "extra-text";
        div.textContent = key.replace(/_/g, " ") + ": " + value;
      }
      extra.append(div);
    }
    $("skip").hidden = !hint.skippable;
    const errors = $("errors");
    errors.replaceChildren();
    for (const [field, message] of Object.entries(result.errors || {})) {
      const li = document.createElement("li");
      li.textContent = field + ": " + message;
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
    $("step").hidden = true;
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
    li.textContent = (data && (data.detail || data.error)) || ("error " + status);
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

  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    call("resume", { session_token: saved }).then((r) => {
      if (r.status === 200) { render(r.data); } else { sessionStorage.removeItem(KEY); }
    });
  }
})();
