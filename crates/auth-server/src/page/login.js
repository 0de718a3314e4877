// The sign-in page: password, passkey (button and autofill), a code or link by email (bound to
// this browser by an HttpOnly cookie), the second step (TOTP, recovery code or passkey), and
// asking for a reset link. It is also /magic-link, where a mailed sign-in link lands. A session
// goes to /account.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const K = window.AuthKit;
  let mfaToken = null;
  // "Trust this browser" is offered where the server trusts devices (AUTH_TRUSTED_DEVICE_DAYS).
  $("trust-row").hidden = $("trust-row").dataset.days === "0";
  let autofill = null; // the pending conditional request, aborted before a modal one

  function show(step) {
    for (const id of ["password-step", "code-step", "reset-step", "magic-step"]) { $(id).hidden = id !== step; }
    const focus = { "password-step": "email", "code-step": "code", "reset-step": "reset-email", "magic-step": "magic-email" }[step];
    $(focus).focus();
  }

  function signedIn(tokens) {
    K.session.set(tokens);
    location.assign("/account");
  }

  // A login answer: tokens, or the second step.
  function answer(r, errors) {
    if (r.status === 200 && r.data.mfa_required) {
      mfaToken = r.data.mfa_token;
      $("code").value = "";
      K.say($("code-errors"), []);
      show("code-step");
      return;
    }
    if (r.status === 200) { signedIn(r.data); return; }
    K.say(errors, K.problems(r, {
      401: "The email address or the password is not right.",
      403: "This account cannot sign in.",
      409: "An account already uses this email address. Sign in with its password, then connect the provider on your account page.",
    }));
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("email").value.trim();
    const password = $("password").value;
    if (!email || !password) { K.say($("login-errors"), ["Enter your email address and your password."]); return; }
    $("sign-in").disabled = true;
    const r = await K.raw("POST", "/auth/login", { email, password });
    $("sign-in").disabled = false;
    answer(r, $("login-errors"));
  });

  $("code-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = $("code").value.trim();
    if (!code) { K.say($("code-errors"), ["Enter the code."]); return; }
    $("verify").disabled = true;
    const trust = !$("trust-row").hidden && $("trust").checked;
    const r = await K.raw("POST", "/auth/mfa/verify", { mfa_token: mfaToken, code, trust_device: trust });
    $("verify").disabled = false;
    if (r.status === 200) { signedIn(r.data); return; }
    K.say($("code-errors"), K.problems(r, { 401: "That code is not right, or it was already used. Try the next one." }));
  });

  // A passkey ceremony: options (for an address, none, or the second step), the authenticator,
  // the answer.
  async function withPasskey(body, mediation, errors) {
    const o = await K.raw("POST", "/auth/passkeys/login/options", body);
    if (o.status !== 200) { if (errors) { K.say(errors, K.problems(o)); } return; }
    let credential;
    try {
      const request = { publicKey: K.requestOptions(o.data.publicKey) };
      if (mediation) {
        autofill = new AbortController();
        request.mediation = mediation;
        request.signal = autofill.signal;
      }
      credential = await navigator.credentials.get(request);
    } catch (_) {
      if (errors && !mediation) { K.say(errors, ["No passkey was used. Try again, or sign in with your password."]); }
      return;
    }
    if (!credential) { return; }
    const login = { challenge_id: o.data.challenge_id, credential: K.credentialJson(credential) };
    if (body.mfa_token) { login.mfa_token = body.mfa_token; }
    const r = await K.raw("POST", "/auth/passkeys/login", login);
    answer(r, errors || $("login-errors"));
  }

  if (K.passkeysSupported()) {
    $("passkey-area").hidden = false;
    $("code-passkey").hidden = false;
    $("passkey").addEventListener("click", () => {
      if (autofill) { autofill.abort(); autofill = null; }
      K.say($("login-errors"), []);
      withPasskey({}, null, $("login-errors"));
    });
    $("code-passkey").addEventListener("click", () => {
      if (autofill) { autofill.abort(); autofill = null; }
      withPasskey({ mfa_token: mfaToken }, null, $("code-errors"));
    });
    // Passkeys offered in the email field's autofill, where the browser can.
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((yes) => {
        if (yes) { withPasskey({}, "conditional", null); }
      });
    }
  }

  // A code or link by email: asked for here, so only this browser holds the flow it is bound to.
  $("email-code").addEventListener("click", () => {
    $("magic-email").value = $("email").value;
    $("magic-form").hidden = true;
    $("magic-request").hidden = false;
    $("magic-status").textContent = "";
    K.say($("magic-errors"), []);
    show("magic-step");
  });
  $("magic-back").addEventListener("click", () => show("password-step"));
  $("magic-request").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("magic-email").value.trim();
    if (!email) { K.say($("magic-errors"), ["Enter your email address."]); return; }
    $("magic-send").disabled = true;
    const r = await K.raw("POST", "/auth/magic-link/request", { email });
    $("magic-send").disabled = false;
    if (r.status !== 202) { K.say($("magic-errors"), K.problems(r)); return; }
    K.say($("magic-errors"), []);
    $("magic-status").textContent = "If an account uses this address, a code is on its way. Enter it here, or open the link in this browser.";
    $("magic-request").hidden = true;
    $("magic-form").hidden = false;
    $("magic-code").focus();
  });
  $("magic-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = $("magic-code").value.trim();
    if (!code) { K.say($("magic-errors"), ["Enter the code."]); return; }
    $("magic-verify").disabled = true;
    const r = await K.raw("POST", "/auth/magic-link/verify", { email: $("magic-email").value.trim(), code });
    $("magic-verify").disabled = false;
    answer(r, $("magic-errors"));
    if (r.status === 401) {
      K.say($("magic-errors"), ["That code is not right, or it expired. After three wrong codes, ask for a new one."]);
    }
  });

  $("forgot").addEventListener("click", () => { $("reset-email").value = $("email").value; show("reset-step"); });
  $("reset-back").addEventListener("click", () => show("password-step"));
  $("back").addEventListener("click", () => { mfaToken = null; show("password-step"); });
  $("reset-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("reset-email").value.trim();
    if (!email) { K.say($("reset-errors"), ["Enter your email address."]); return; }
    const r = await K.raw("POST", "/auth/password/reset/request", { email });
    if (r.status === 202 || r.status === 204 || r.status === 200) {
      K.say($("reset-errors"), []);
      $("reset-status").textContent = "If an account uses this address, a link is on its way. Check your inbox.";
      return;
    }
    K.say($("reset-errors"), K.problems(r));
  });

  // Providers (AUTH_OAUTH_PROVIDERS): each a button that leaves for the provider and comes
  // back here with a single-use code (or an error).
  const names = ($("provider-area").dataset.providers || "").split(",").filter(Boolean);
  const label = (n) => n.charAt(0).toUpperCase() + n.slice(1);
  for (const name of names) {
    const b = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Continue with " + label(name) });
    b.dataset.provider = name;
    b.addEventListener("click", () => {
      const back = location.origin + "/login";
      location.assign("/auth/oauth/" + encodeURIComponent(name) + "/start?redirect_to=" + encodeURIComponent(back));
    });
    $("providers").append(b);
  }
  $("provider-area").hidden = names.length === 0;
  const back = new URLSearchParams(location.search);
  if (back.has("code") || back.has("error")) {
    history.replaceState(null, "", location.pathname); // the code is in memory now
    const PROVIDER_ERRORS = {
      access_denied: "The sign-in was cancelled at the provider.",
      invalid_state: "That sign-in attempt expired or came from another browser. Try again.",
      invalid_response: "The provider's answer could not be checked. Try again.",
      provider_unavailable: "The provider could not be reached. Try again in a moment.",
    };
    if (back.has("error")) {
      K.say($("login-errors"), [PROVIDER_ERRORS[back.get("error")] || "The sign-in did not work. Try again."]);
    } else {
      K.raw("POST", "/auth/oauth/exchange", { code: back.get("code") }).then((r) => answer(r, $("login-errors")));
    }
  }

  // A mailed sign-in link: /magic-link?token=… in the browser that asked for it.
  if (location.pathname === "/magic-link") {
    const token = back.get("token") || "";
    history.replaceState(null, "", "/login"); // the token is in memory now
    if (token) {
      K.raw("POST", "/auth/magic-link/verify", { token }).then((r) => {
        if (r.status === 401) {
          K.say($("login-errors"), ["This sign-in link works once, for 10 minutes, and only in the browser where it was asked for. Open it there, or ask for a new one here."]);
          return;
        }
        answer(r, $("login-errors"));
      });
    }
    return;
  }

  if (K.session.get()) {
    K.api("GET", "/auth/me").then((r) => { if (r.status === 200) { location.assign("/account"); } });
  }
}());
