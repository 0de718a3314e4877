// Shared by the sign-in and account pages: API calls, the session in this tab, WebAuthn JSON,
// and error messages in plain words.
(function () {
  "use strict";
  const KEY = "auth_session";

  function b64urlToBytes(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function bytesToB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = "";
    for (const b of bytes) { bin += String.fromCharCode(b); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // WebAuthn JSON (base64url) to the objects navigator.credentials expects.
  function creationOptions(json) {
    const o = structuredClone(json);
    o.challenge = b64urlToBytes(o.challenge);
    o.user.id = b64urlToBytes(o.user.id);
    o.excludeCredentials = (o.excludeCredentials || []).map((c) => ({ ...c, id: b64urlToBytes(c.id) }));
    return o;
  }

  function requestOptions(json) {
    const o = structuredClone(json);
    o.challenge = b64urlToBytes(o.challenge);
    o.allowCredentials = (o.allowCredentials || []).map((c) => ({ ...c, id: b64urlToBytes(c.id) }));
    return o;
  }

  // A credential back to WebAuthn JSON for the server.
  function credentialJson(credential) {
    const r = credential.response;
    const response = { clientDataJSON: bytesToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bytesToB64url(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = bytesToB64url(r.authenticatorData);
      response.signature = bytesToB64url(r.signature);
      response.userHandle = r.userHandle ? bytesToB64url(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: bytesToB64url(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  const session = {
    get() { try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch (_) { return null; } },
    set(tokens) {
      sessionStorage.setItem(KEY, JSON.stringify({ access: tokens.access_token, refresh: tokens.refresh_token || null }));
    },
    clear() { sessionStorage.removeItem(KEY); },
  };

  async function raw(method, path, body, token) {
    const headers = {};
    if (body !== undefined) { headers["content-type"] = "application/json"; }
    if (token) { headers.authorization = "Bearer " + token; }
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (_) {
      return { status: 0, data: {} };
    }
    let data = {};
    try { data = await response.json(); } catch (_) { /* no body */ }
    return { status: response.status, data };
  }

  // One refresh at a time for the whole page: calls that find the access token expired
  // together share it, instead of each presenting the same refresh token.
  let refreshing = null;
  function refreshOnce(refreshToken) {
    if (!refreshing) {
      refreshing = raw("POST", "/auth/refresh", { refresh_token: refreshToken })
        .then((next) => {
          if (next.status === 200) { session.set(next.data); }
          return next;
        })
        .finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  // A call as the signed-in user: refreshes the session once when the access token expired.
  async function api(method, path, body) {
    const s = session.get();
    let r = await raw(method, path, body, s && s.access);
    if (r.status === 401 && s && s.refresh) {
      // Another call may have refreshed meanwhile: use its tokens.
      const now = session.get();
      let access = now && now.access !== s.access ? now.access : null;
      if (!access) {
        const next = await refreshOnce(s.refresh);
        access = next.status === 200 ? next.data.access_token : null;
      }
      if (access) { r = await raw(method, path, body, access); }
    }
    return r;
  }

  const MESSAGES = {
    0: "The server could not be reached. Check your connection and try again.",
    401: "That did not work. Check what you entered and try again.",
    403: "For your safety, sign in again before doing this.",
    404: "This no longer exists. Reload the page.",
    409: "This is already done.",
    429: "Too many attempts. Wait a few minutes and try again.",
    503: "The service is busy. Try again in a moment.",
  };

  // Plain words for an answer that failed: field messages for 422, else by status.
  function problems(r, overrides) {
    const own = (overrides || {})[r.status];
    if (own) { return [own]; }
    if (r.status === 422 && Array.isArray(r.data.errors) && r.data.errors.length) {
      return r.data.errors.map((e) => e.message);
    }
    return [MESSAGES[r.status] || "Something went wrong on our side. Try again in a moment."];
  }

  function say(list, messages) {
    list.replaceChildren(...messages.map((m) => Object.assign(document.createElement("li"), { textContent: m })));
  }

  function passkeysSupported() {
    return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
  }

  window.AuthKit = { api, raw, session, problems, say, creationOptions, requestOptions, credentialJson, passkeysSupported };
}());
