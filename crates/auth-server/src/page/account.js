// The account page: address and its state, passkeys, two-step verification, password, and
// where the account is signed in. Every change goes through the API as the signed-in user.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const K = window.AuthKit;
  if (!K.session.get()) { location.replace("/login"); return; }

  const when = (t) => (t ? new Date(t).toLocaleString() : "never");
  const row = (title, detail, buttons) => {
    const li = document.createElement("li");
    const what = document.createElement("div");
    what.className = "what";
    what.append(title, Object.assign(document.createElement("small"), { textContent: detail }));
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.style.marginTop = "0";
    actions.append(...buttons);
    li.append(what, actions);
    return li;
  };
  const button = (text, cls, label, onClick) => {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: text, className: cls });
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  };
  const fresh = { 403: "For your safety, sign out and sign in again, then try once more." };

  async function me() {
    const r = await K.api("GET", "/auth/me");
    if (r.status === 401) { K.session.clear(); location.replace("/login"); return; }
    $("email").textContent = r.data.email;
    $("verified").textContent = r.data.is_verified ? "Confirmed" : "Not confirmed";
    $("verified").className = "badge " + (r.data.is_verified ? "ok" : "warn");
    $("send-verification").hidden = !!r.data.is_verified;
  }

  async function passkeys() {
    const r = await K.api("GET", "/auth/passkeys");
    if (r.status !== 200) { $("add-passkey").closest("section").hidden = r.status === 404; return; }
    $("passkeys").replaceChildren(...r.data.passkeys.map((p) => row(
      p.name,
      "Added " + when(p.created_at) + " · last used " + when(p.last_used_at) + (p.backed_up ? " · synced" : ""),
      [
        button("Rename", "secondary", "Rename " + p.name, (event) => {
          // The name becomes a field in place, with Save and Cancel.
          const li = event.target.closest("li");
          const form = document.createElement("form");
          form.className = "rename";
          const label = Object.assign(document.createElement("label"), { textContent: "Name" });
          const input = Object.assign(document.createElement("input"), { type: "text", value: p.name, maxLength: 64, name: "name" });
          label.append(input);
          const save = Object.assign(document.createElement("button"), { type: "submit", textContent: "Save" });
          const cancel = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Cancel" });
          cancel.addEventListener("click", () => passkeys());
          const actions = Object.assign(document.createElement("div"), { className: "actions" });
          actions.append(save, cancel);
          form.append(label, actions);
          form.addEventListener("submit", async (e) => {
            e.preventDefault();
            const x = await K.api("PATCH", "/auth/passkeys/" + encodeURIComponent(p.id), { name: input.value.trim() });
            if (x.status === 200) { K.say($("passkey-errors"), []); passkeys(); } else { K.say($("passkey-errors"), K.problems(x)); }
          });
          li.replaceChildren(form);
          input.focus();
          input.select();
        }),
        button("Remove", "danger", "Remove " + p.name, async () => {
          const x = await K.api("DELETE", "/auth/passkeys/" + encodeURIComponent(p.id));
          if (x.status === 204) { K.say($("passkey-errors"), []); passkeys(); return; }
          K.say($("passkey-errors"), K.problems(x, fresh));
        }),
      ],
    )));
    if (!r.data.passkeys.length) {
      $("passkeys").append(Object.assign(document.createElement("li"), { textContent: "No passkeys yet." }));
    }
  }

  $("add-passkey").addEventListener("click", async () => {
    K.say($("passkey-errors"), []);
    if (!K.passkeysSupported()) { K.say($("passkey-errors"), ["This browser cannot use passkeys."]); return; }
    const o = await K.api("POST", "/auth/passkeys/register/options");
    if (o.status !== 200) { K.say($("passkey-errors"), K.problems(o, fresh)); return; }
    let credential;
    try {
      credential = await navigator.credentials.create({ publicKey: K.creationOptions(o.data.publicKey) });
    } catch (_) {
      K.say($("passkey-errors"), ["No passkey was created. Try again."]);
      return;
    }
    const body = K.credentialJson(credential);
    body.name = navigator.platform ? "Passkey on " + navigator.platform : "Passkey";
    const r = await K.api("POST", "/auth/passkeys/register", body);
    if (r.status === 201) { passkeys(); return; }
    K.say($("passkey-errors"), K.problems(r, fresh));
  });

  async function mfa() {
    const r = await K.api("GET", "/auth/mfa");
    if (r.status !== 200) { $("mfa-title").closest("section").hidden = true; return; }
    $("mfa-state").textContent = r.data.enabled ? "On" : "Off";
    $("mfa-state").className = "badge " + (r.data.enabled ? "ok" : "");
    $("mfa-off").hidden = r.data.enabled;
    $("mfa-on").hidden = !r.data.enabled;
    $("mfa-enrol").hidden = true;
    $("mfa-left").textContent = r.data.recovery_codes_left;
  }

  function recovery(codes) {
    $("recovery").textContent = "Your recovery codes. Keep them somewhere safe: each works once, and you will not see them again.\n\n" + codes.join("\n");
    $("recovery").hidden = false;
  }

  $("mfa-setup").addEventListener("click", async () => {
    K.say($("mfa-errors"), []);
    const r = await K.api("POST", "/auth/mfa/totp/setup", {});
    if (r.status !== 200) {
      K.say($("mfa-errors"), K.problems(r, { 422: "Confirm your email address first: we sent you a link." }));
      return;
    }
    $("mfa-qr").innerHTML = r.data.qr_svg; // an image this server drew
    $("mfa-secret").textContent = r.data.secret;
    $("mfa-off").hidden = true;
    $("mfa-enrol").hidden = false;
    $("mfa-confirm-code").focus();
  });

  $("mfa-enrol").addEventListener("submit", async (event) => {
    event.preventDefault();
    const r = await K.api("POST", "/auth/mfa/totp/confirm", { code: $("mfa-confirm-code").value.trim() });
    if (r.status === 200) { K.say($("mfa-errors"), []); recovery(r.data.recovery_codes); mfa(); return; }
    K.say($("mfa-errors"), K.problems(r, { 401: "That code is not right. Enter the one your app shows now." }));
  });

  $("mfa-codes").addEventListener("click", async () => {
    const r = await K.api("POST", "/auth/mfa/recovery-codes", { code: $("mfa-code").value.trim() });
    if (r.status === 200) { K.say($("mfa-errors"), []); recovery(r.data.recovery_codes); mfa(); return; }
    K.say($("mfa-errors"), K.problems(r, { 401: "That code is not right." }));
  });

  $("mfa-disable").addEventListener("click", async () => {
    const r = await K.api("POST", "/auth/mfa/totp/disable", { code: $("mfa-code").value.trim() });
    if (r.status === 204) { K.say($("mfa-errors"), []); $("recovery").hidden = true; mfa(); return; }
    K.say($("mfa-errors"), K.problems(r, { ...fresh, 401: "That code is not right." }));
  });

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("password-status").textContent = "";
    if ($("new-password").value !== $("new-password-again").value) {
      K.say($("password-errors"), ["The two new passwords are not the same."]);
      return;
    }
    const r = await K.api("POST", "/auth/password/change", {
      current_password: $("current-password").value,
      new_password: $("new-password").value,
    });
    if (r.status === 204) {
      K.say($("password-errors"), []);
      $("password-form").reset();
      $("password-status").textContent = "Your password was changed. Your other devices were signed out. If someone else may have used your account, also secure it below: API keys, passkeys and connected accounts stay until you do.";
      sessions();
      devices();
      secureChoices();
      $("secure-card").scrollIntoView({ block: "nearest" });
      return;
    }
    K.say($("password-errors"), K.problems(r, { ...fresh, 401: "Your current password is not right." }));
  });

  async function sessions() {
    const r = await K.api("GET", "/auth/sessions");
    if (r.status !== 200) { $("sessions-title").closest("section").hidden = true; return; }
    $("sessions").replaceChildren(...r.data.sessions.map((s) => row(
      (s.user_agent || "Unknown device") + (s.current ? " (this device)" : ""),
      (s.ip ? s.ip + " · " : "") + "signed in " + when(s.created_at) + (s.last_used_at ? " · last used " + when(s.last_used_at) : ""),
      s.current ? [] : [button("Sign out", "danger", "Sign out " + (s.user_agent || "this session"), async () => {
        const x = await K.api("DELETE", "/auth/sessions/" + encodeURIComponent(s.id));
        if (x.status === 204) { K.say($("session-errors"), []); sessions(); return; }
        K.say($("session-errors"), K.problems(x, fresh));
      })],
    )));
  }

  // Browsers trusted at the second factor (shown only when there are any).
  async function devices() {
    const r = await K.api("GET", "/auth/devices");
    const list = r.status === 200 ? r.data.devices : [];
    $("devices-card").hidden = list.length === 0;
    $("devices").replaceChildren(...list.map((d) => row(
      d.user_agent || "Unknown browser",
      (d.ip ? d.ip + " · " : "") + "trusted " + when(d.created_at) + " · until " + when(d.expires_at),
      [button("Forget", "danger", "Forget " + (d.user_agent || "this browser"), async () => {
        const x = await K.api("DELETE", "/auth/devices/" + encodeURIComponent(d.id));
        if (x.status === 204) { K.say($("device-errors"), []); devices(); return; }
        K.say($("device-errors"), K.problems(x, fresh));
      })],
    )));
  }

  $("send-verification").addEventListener("click", async () => {
    const r = await K.api("POST", "/auth/email/verify/request", {});
    $("account-status").textContent = r.status === 202 ? "We sent you a link. Open it to confirm your address." : K.problems(r)[0];
  });

  $("sign-out").addEventListener("click", async () => {
    await K.api("POST", "/auth/logout");
    K.session.clear();
    location.assign("/login");
  });

  const providerNames = ($("identities-card").dataset.providers || "").split(",").filter(Boolean);
  const label = (n) => n.charAt(0).toUpperCase() + n.slice(1);
  async function identities() {
    if (!providerNames.length) { return; }
    $("identities-card").hidden = false;
    const r = await K.api("GET", "/auth/identities");
    if (r.status !== 200) { return; }
    $("identities").replaceChildren(...r.data.identities.map((i) => row(
      label(i.provider) + (i.email ? " · " + i.email : ""),
      "Connected " + when(i.created_at) + (i.last_used_at ? " · last used " + when(i.last_used_at) : ""),
      [button("Disconnect", "danger", "Disconnect " + label(i.provider), async () => {
        const x = await K.api("DELETE", "/auth/identities/" + encodeURIComponent(i.id));
        if (x.status === 204) { K.say($("identity-errors"), []); identities(); return; }
        K.say($("identity-errors"), K.problems(x, fresh));
      })],
    )));
    if (!r.data.identities.length) {
      $("identities").append(Object.assign(document.createElement("li"), { textContent: "None yet." }));
    }
    $("connect").replaceChildren(...providerNames.map((name) => button("Connect " + label(name), "secondary", "Connect " + label(name), async () => {
      const x = await K.api("POST", "/auth/oauth/" + encodeURIComponent(name) + "/link/start", { redirect_to: location.origin + "/account" });
      if (x.status === 200) { location.assign(x.data.url); return; }
      K.say($("identity-errors"), K.problems(x, fresh));
    })));
  }
  const back = new URLSearchParams(location.search);
  if (back.has("linked") || back.has("error")) {
    history.replaceState(null, "", location.pathname);
    if (back.has("linked")) {
      $("identity-status").textContent = label(back.get("linked")) + " is connected: you can sign in with it.";
    } else {
      K.say($("identity-errors"), [back.get("error") === "identity_in_use"
        ? "That account at the provider is already connected to another account here."
        : "Connecting did not work. Try again."]);
    }
  }

  // "Secure my account": what to keep, from the passkeys and connected accounts listed now.
  async function secureChoices() {
    const [p, i] = await Promise.all([K.api("GET", "/auth/passkeys"), K.api("GET", "/auth/identities")]);
    const items = [];
    for (const x of (p.status === 200 ? p.data.passkeys : [])) { items.push(["passkey", x.id, "Passkey: " + x.name]); }
    for (const x of (i.status === 200 ? i.data.identities : [])) { items.push(["identity", x.id, "Connected account: " + x.provider + (x.email ? " (" + x.email + ")" : "")]); }
    $("secure-keep-list").replaceChildren(...items.map(([kind, id, text]) => {
      const label = document.createElement("label");
      label.className = "check";
      const box = Object.assign(document.createElement("input"), { type: "checkbox", name: kind, value: id });
      label.append(box, " " + text);
      return label;
    }));
    $("secure-keep").hidden = items.length === 0;
  }
  $("secure-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const kept = (kind) => [...document.querySelectorAll("#secure-keep-list input[name=" + kind + "]:checked")].map((b) => b.value);
    $("secure").disabled = true;
    const r = await K.api("POST", "/auth/account/secure", { keep_passkeys: kept("passkey"), keep_identities: kept("identity") });
    $("secure").disabled = false;
    if (r.status === 200) {
      K.say($("secure-errors"), []);
      $("secure-status").textContent = "Done: " + r.data.sessions_ended + " other sessions ended, " + r.data.api_keys_revoked + " API keys revoked, " + r.data.passkeys_removed + " passkeys and " + r.data.identities_removed + " connected accounts removed.";
      passkeys(); sessions(); identities(); secureChoices();
      return;
    }
    K.say($("secure-errors"), K.problems(r, { ...fresh, 422: "Keep at least one way to sign in: this account has no password." }));
  });

  me().then(() => Promise.all([passkeys(), mfa(), sessions(), devices(), identities(), secureChoices()]));
}());
