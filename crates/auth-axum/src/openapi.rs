//! The OpenAPI 3.1 document of the auth routes, as utoipa's model.

use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

/// Which optional parts the document describes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parts {
    pub(crate) mount: String,
    pub(crate) mfa: bool,
    pub(crate) reset: bool,
    pub(crate) verification: bool,
    pub(crate) cookie: bool,
    pub(crate) audit: bool,
    pub(crate) email_change: bool,
    pub(crate) magic_link: bool,
    pub(crate) passkeys: bool,
    pub(crate) oauth: bool,
}

struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    bearer: bool,
    body: Option<Value>,
    ok: (&'static str, &'static str, Option<Value>),
    errors: &'static [&'static str],
}

fn obj(required: &[&str], optional: &[&str]) -> Value {
    let mut props = Map::new();
    for name in required.iter().chain(optional) {
        props.insert((*name).into(), json!({"type": "string"}));
    }
    json!({"type": "object", "required": required, "properties": props})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn routes(parts: &Parts) -> Vec<Route> {
    let mut all = vec![
        Route {
            method: "post",
            path: "/register",
            summary: "Create an account and log in",
            tag: "auth",
            bearer: false,
            body: Some(obj(&["email", "password"], &[])),
            ok: (
                "201",
                "Registered; the token pair",
                Some(schema_ref("TokenPair")),
            ),
            errors: &["409", "422", "429"],
        },
        Route {
            method: "post",
            path: "/login",
            summary: "Log in with email and password",
            tag: "auth",
            bearer: false,
            body: Some(obj(&["email", "password"], &[])),
            ok: (
                "200",
                "The token pair, or {mfa_required, mfa_token} for an account with a second factor",
                Some(json!({"oneOf": [schema_ref("TokenPair"), schema_ref("MfaChallenge")]})),
            ),
            errors: &["401", "422", "429"],
        },
        Route {
            method: "post",
            path: "/refresh",
            summary: "Rotate the refresh token",
            tag: "auth",
            bearer: false,
            body: Some(obj(&[], &["refresh_token"])),
            ok: ("200", "The new pair", Some(schema_ref("TokenPair"))),
            errors: &["401", "422"],
        },
        Route {
            method: "get",
            path: "/me",
            summary: "The authenticated user",
            tag: "auth",
            bearer: true,
            body: None,
            ok: ("200", "The user", Some(schema_ref("User"))),
            errors: &["401"],
        },
        Route {
            method: "get",
            path: "/verify",
            summary: "Check an access token without loading its user (forward authentication)",
            tag: "auth",
            bearer: true,
            body: None,
            ok: (
                "204",
                "Valid; the user id is in the x-auth-user-id header",
                None,
            ),
            errors: &["401"],
        },
        Route {
            method: "post",
            path: "/logout",
            summary: "End this session",
            tag: "auth",
            bearer: true,
            body: None,
            ok: ("204", "Logged out", None),
            errors: &["401"],
        },
        Route {
            method: "post",
            path: "/logout-all",
            summary: "End every session of the user",
            tag: "auth",
            bearer: true,
            body: None,
            ok: (
                "200",
                "{sessions_ended}",
                Some(
                    json!({"type": "object", "properties": {"sessions_ended": {"type": "integer"}}}),
                ),
            ),
            errors: &["401"],
        },
        Route {
            method: "get",
            path: "/sessions",
            summary: "List the user's sessions",
            tag: "sessions",
            bearer: true,
            body: None,
            ok: (
                "200",
                "{sessions: [...]}",
                Some(
                    json!({"type": "object", "properties": {"sessions": {"type": "array", "items": schema_ref("Session")}}}),
                ),
            ),
            errors: &["401", "501"],
        },
        Route {
            method: "delete",
            path: "/sessions/{id}",
            summary: "End one session (needs a fresh login)",
            tag: "sessions",
            bearer: true,
            body: None,
            ok: ("204", "Ended", None),
            errors: &["401", "403", "404"],
        },
        Route {
            method: "post",
            path: "/sessions/revoke-others",
            summary: "End every other session (needs a fresh login)",
            tag: "sessions",
            bearer: true,
            body: None,
            ok: ("200", "{sessions_ended}", None),
            errors: &["401", "403"],
        },
        Route {
            method: "post",
            path: "/account/secure",
            summary: "Secure my account (needs a fresh login): every other session ends, every API key is revoked, the passkeys and connected accounts not kept are removed",
            tag: "sessions",
            bearer: true,
            body: Some(json!({"type": "object", "properties": {
                "keep_passkeys": {"type": "array", "items": {"type": "string"}},
                "keep_identities": {"type": "array", "items": {"type": "string"}}}})),
            ok: (
                "200",
                "{sessions_ended, api_keys_revoked, passkeys_removed, identities_removed}",
                None,
            ),
            errors: &["401", "403", "422"],
        },
        Route {
            method: "post",
            path: "/api-keys",
            summary: "Create an API key (needs a fresh login); the key is shown this once",
            tag: "api-keys",
            bearer: true,
            body: Some(
                json!({"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "scopes": {"type": "array", "items": {"type": "string"}},
                    "expires_in": {"type": "integer", "description": "seconds"},
                    "rate_limit": {"type": "object", "properties": {"requests": {"type": "integer"}, "window_seconds": {"type": "integer"}}},
                    "metadata": {"type": "object"}
                }}),
            ),
            ok: (
                "201",
                "The key and its record",
                Some(schema_ref("IssuedApiKey")),
            ),
            errors: &["401", "403", "422"],
        },
        Route {
            method: "get",
            path: "/api-keys",
            summary: "List the caller's API keys (never their secrets)",
            tag: "api-keys",
            bearer: true,
            body: None,
            ok: (
                "200",
                "{api_keys: [...]}",
                Some(
                    json!({"type": "object", "properties": {"api_keys": {"type": "array", "items": schema_ref("ApiKey")}}}),
                ),
            ),
            errors: &["401"],
        },
        Route {
            method: "post",
            path: "/api-keys/{id}/roll",
            summary: "Roll an API key (needs a fresh login): a new key; the old one works for grace_seconds",
            tag: "api-keys",
            bearer: true,
            body: Some(
                json!({"type": "object", "properties": {"grace_seconds": {"type": "integer"}}}),
            ),
            ok: (
                "200",
                "The new key, and previous_expires_at",
                Some(schema_ref("IssuedApiKey")),
            ),
            errors: &["401", "403", "404", "422"],
        },
        Route {
            method: "delete",
            path: "/api-keys/{id}",
            summary: "Revoke an API key",
            tag: "api-keys",
            bearer: true,
            body: None,
            ok: ("204", "Revoked", None),
            errors: &["401", "404"],
        },
        Route {
            method: "post",
            path: "/password/change",
            summary: "Change the password (needs a fresh login); other sessions end",
            tag: "password",
            bearer: true,
            body: Some(obj(&["current_password", "new_password"], &[])),
            ok: ("204", "Changed", None),
            errors: &["401", "403", "422"],
        },
    ];
    if parts.reset {
        all.push(Route {
            method: "post",
            path: "/password/reset/request",
            summary: "Mail a reset link (the same answer for unknown emails)",
            tag: "password",
            bearer: false,
            body: Some(obj(&["email"], &[])),
            ok: ("202", "Accepted", None),
            errors: &["422", "429"],
        });
        all.push(Route {
            method: "post",
            path: "/password/reset/confirm",
            summary: "Set a new password with a reset token; every session ends",
            tag: "password",
            bearer: false,
            body: Some(obj(&["token", "new_password"], &[])),
            ok: ("204", "Reset", None),
            errors: &["401", "422"],
        });
    }
    if parts.verification {
        all.push(Route {
            method: "post",
            path: "/email/verify/request",
            summary: "Mail a verification link",
            tag: "email",
            bearer: true,
            body: None,
            ok: ("202", "Accepted", None),
            errors: &["401"],
        });
        all.push(Route {
            method: "post",
            path: "/email/verify/confirm",
            summary: "Confirm the email address with the link's token",
            tag: "email",
            bearer: false,
            body: Some(obj(&["token"], &[])),
            ok: ("200", "{id, is_verified}", None),
            errors: &["401", "422"],
        });
    }
    if parts.email_change {
        all.extend([
            Route {
                method: "post",
                path: "/email/change",
                summary: "Change the email address: a confirmation link to the new one, a notice to the old one",
                tag: "email",
                bearer: true,
                body: Some(obj(&["new_email", "password"], &[])),
                ok: ("202", "Accepted", None),
                errors: &["401", "422", "429"],
            },
            Route {
                method: "post",
                path: "/email/change/confirm",
                summary: "Confirm the change with the new address's link",
                tag: "email",
                bearer: false,
                body: Some(obj(&["token"], &[])),
                ok: ("200", "{id, email, is_verified}", None),
                errors: &["401", "409", "422"],
            },
            Route {
                method: "post",
                path: "/email/change/cancel",
                summary: "Cancel the change with the old address's link",
                tag: "email",
                bearer: false,
                body: Some(obj(&["token"], &[])),
                ok: ("204", "Cancelled", None),
                errors: &["401", "422"],
            },
        ]);
    }
    if parts.magic_link {
        all.extend([
            Route {
                method: "post",
                path: "/magic-link/request",
                summary: "Mail a sign-in link and code (the same answer for unknown emails)",
                tag: "auth",
                bearer: false,
                body: Some(obj(&["email"], &[])),
                ok: ("202", "Accepted", None),
                errors: &["422", "429"],
            },
            Route {
                method: "post",
                path: "/magic-link/verify",
                summary: "Sign in with the link's token, or the email and code",
                tag: "auth",
                bearer: false,
                body: Some(obj(&[], &["token", "email", "code"])),
                ok: (
                    "200",
                    "The token pair, or {mfa_required, mfa_token}",
                    Some(json!({"oneOf": [schema_ref("TokenPair"), schema_ref("MfaChallenge")]})),
                ),
                errors: &["401", "422", "429"],
            },
        ]);
    }
    if parts.passkeys {
        let login_answer = json!({"oneOf": [schema_ref("TokenPair"), schema_ref("MfaChallenge")]});
        all.extend([
            Route {
                method: "post",
                path: "/passkeys/register/options",
                summary: "Options for registering a passkey (navigator.credentials.create); the address must be proven (422 email_not_verified)",
                tag: "passkeys",
                bearer: true,
                body: None,
                ok: ("200", "{publicKey}", None),
                errors: &["401", "403", "422"],
            },
            Route {
                method: "post",
                path: "/passkeys/register",
                summary: "Register the passkey the authenticator created",
                tag: "passkeys",
                bearer: true,
                body: Some(obj(&["id", "rawId", "type", "response"], &["name"])),
                ok: (
                    "201",
                    "{id, name, created_at, last_used_at, backup_eligible, backed_up}",
                    None,
                ),
                errors: &["401", "403", "422"],
            },
            Route {
                method: "post",
                path: "/passkeys/login/options",
                summary: "Options for signing in with a passkey (navigator.credentials.get)",
                tag: "passkeys",
                bearer: false,
                body: Some(obj(&[], &["email", "mfa_token"])),
                ok: ("200", "{challenge_id, publicKey, mediation?}", None),
                errors: &["401", "422"],
            },
            Route {
                method: "post",
                path: "/passkeys/login",
                summary: "Sign in with a passkey, or answer a second-factor challenge with one",
                tag: "passkeys",
                bearer: false,
                body: Some(obj(&["challenge_id", "credential"], &["mfa_token"])),
                ok: (
                    "200",
                    "The token pair, or {mfa_required, mfa_token}",
                    Some(login_answer),
                ),
                errors: &["401", "422", "429"],
            },
            Route {
                method: "get",
                path: "/passkeys",
                summary: "The account's passkeys",
                tag: "passkeys",
                bearer: true,
                body: None,
                ok: ("200", "{passkeys}", None),
                errors: &["401"],
            },
            Route {
                method: "patch",
                path: "/passkeys/{id}",
                summary: "Rename a passkey",
                tag: "passkeys",
                bearer: true,
                body: Some(obj(&["name"], &[])),
                ok: ("200", "The passkey", None),
                errors: &["401", "404", "422"],
            },
            Route {
                method: "delete",
                path: "/passkeys/{id}",
                summary: "Delete a passkey (not the last way into an account without a password)",
                tag: "passkeys",
                bearer: true,
                body: None,
                ok: ("204", "Deleted", None),
                errors: &["401", "403", "404", "422"],
            },
        ]);
    }
    if parts.oauth {
        let login_answer = json!({"oneOf": [schema_ref("TokenPair"), schema_ref("MfaChallenge")]});
        all.extend([
            Route {
                method: "get",
                path: "/oauth/{provider}/start",
                summary: "Redirect to the provider (query: redirect_to, on the allow-list)",
                tag: "oauth",
                bearer: false,
                body: None,
                ok: ("302", "To the provider, with the browser-binding cookie", None),
                errors: &["400"],
            },
            Route {
                method: "get",
                path: "/oauth/{provider}/callback",
                summary: "The provider's answer: back to redirect_to with ?code=, ?linked= or ?error=",
                tag: "oauth",
                bearer: false,
                body: None,
                ok: ("302", "To redirect_to", None),
                errors: &["400"],
            },
            Route {
                method: "post",
                path: "/oauth/exchange",
                summary: "Exchange the single-use code for the login answer",
                tag: "oauth",
                bearer: false,
                body: Some(obj(&["code"], &[])),
                ok: ("200", "The token pair, or {mfa_required, mfa_token}", Some(login_answer)),
                errors: &["401", "409", "422"],
            },
            Route {
                method: "post",
                path: "/oauth/{provider}/link/start",
                summary: "Start linking the provider to the signed-in account",
                tag: "oauth",
                bearer: true,
                body: Some(obj(&["redirect_to"], &[])),
                ok: ("200", "{url}", None),
                errors: &["401", "403", "422"],
            },
            Route {
                method: "get",
                path: "/identities",
                summary: "The account's linked provider identities",
                tag: "oauth",
                bearer: true,
                body: None,
                ok: ("200", "{identities}", None),
                errors: &["401"],
            },
            Route {
                method: "delete",
                path: "/identities/{id}",
                summary: "Unlink an identity (not the last way into the account)",
                tag: "oauth",
                bearer: true,
                body: None,
                ok: ("204", "Unlinked", None),
                errors: &["401", "403", "404", "422"],
            },
        ]);
    }
    if parts.audit {
        all.push(Route {
            method: "get",
            path: "/activity",
            summary: "The account's audit log: logins, failures, password and factor changes",
            tag: "account",
            bearer: true,
            body: None,
            ok: ("200", "{entries}, newest first", Some(audit_entries())),
            errors: &["401", "422"],
        });
    }
    if parts.mfa {
        let codes = json!({"type": "object", "properties": {"recovery_codes": {"type": "array", "items": {"type": "string"}}}});
        all.extend([
            Route {
                method: "post",
                path: "/mfa/verify",
                summary: "Second login step: a TOTP or recovery code",
                tag: "mfa",
                bearer: false,
                body: Some(json!({
                    "type": "object",
                    "required": ["mfa_token", "code"],
                    "properties": {
                        "mfa_token": {"type": "string"},
                        "code": {"type": "string"},
                        "trust_device": {"type": "boolean", "description": "trust this device: later sign-ins from it skip the second factor (when trusted devices are on); the answer then sets the auth_device cookie and carries device_token"},
                    },
                })),
                ok: ("200", "The token pair (and device_token when a device was trusted)", Some(schema_ref("TokenPair"))),
                errors: &["401", "422", "429"],
            },
            Route {
                method: "get",
                path: "/devices",
                summary: "The devices the user trusts to skip the second factor",
                tag: "mfa",
                bearer: true,
                body: None,
                ok: (
                    "200",
                    "{devices: [{id, created_at, expires_at, ip, user_agent}]}",
                    None,
                ),
                errors: &["401"],
            },
            Route {
                method: "delete",
                path: "/devices/{id}",
                summary: "Stop trusting one device (needs a fresh login)",
                tag: "mfa",
                bearer: true,
                body: None,
                ok: ("204", "Forgotten", None),
                errors: &["401", "403", "404"],
            },
            Route {
                method: "get",
                path: "/mfa",
                summary: "Second-factor status",
                tag: "mfa",
                bearer: true,
                body: None,
                ok: ("200", "{enabled, pending, recovery_codes_left}", None),
                errors: &["401"],
            },
            Route {
                method: "post",
                path: "/mfa/totp/setup",
                summary: "Start TOTP enrolment",
                tag: "mfa",
                bearer: true,
                body: None,
                ok: (
                    "200",
                    "{secret, otpauth_uri, qr_svg}",
                    Some(obj(&["secret", "otpauth_uri", "qr_svg"], &[])),
                ),
                errors: &["401", "422"],
            },
            Route {
                method: "post",
                path: "/mfa/totp/confirm",
                summary: "Confirm enrolment with a code; returns recovery codes",
                tag: "mfa",
                bearer: true,
                body: Some(obj(&["code"], &[])),
                ok: ("200", "{recovery_codes}", Some(codes.clone())),
                errors: &["401", "429"],
            },
            Route {
                method: "post",
                path: "/mfa/totp/disable",
                summary: "Turn the second factor off (needs a fresh login and a code)",
                tag: "mfa",
                bearer: true,
                body: Some(obj(&["code"], &[])),
                ok: ("204", "Disabled", None),
                errors: &["401", "403", "429"],
            },
            Route {
                method: "post",
                path: "/mfa/recovery-codes",
                summary: "Replace the recovery codes",
                tag: "mfa",
                bearer: true,
                body: Some(obj(&["code"], &[])),
                ok: ("200", "{recovery_codes}", Some(codes)),
                errors: &["401", "429"],
            },
        ]);
    }
    all
}

fn error_response(status: &str) -> Value {
    let description = match status {
        "401" => "Unauthorized: every credential or token failure (WWW-Authenticate: Bearer)",
        "403" => "Forbidden: reauthentication_required, mfa_required or csrf",
        "400" => "The body is not valid JSON",
        "404" => "Not found",
        "409" => "Email already registered",
        "413" => "The body is over the 16 KiB limit",
        "415" => "Expected Content-Type: application/json",
        "422" => "Validation failed or invalid body",
        "429" => "Too many attempts (Retry-After)",
        "501" => "Not supported by this token backend",
        "503" => "Unavailable: the database, Redis or the hashing queue (Retry-After)",
        _ => "Error",
    };
    json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}})
}

/// `{entries: [AuditEntry]}`.
fn audit_entries() -> Value {
    json!({"type": "object", "properties": {"entries": {"type": "array", "items": {
        "type": "object", "properties": {
            "kind": {"type": "string"}, "time": {"type": "string"}, "ip": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]}, "detail": {"type": "object"},
            "by_admin": {"type": "boolean"}, "actor": {"type": ["string", "null"]}}}}}})
}

/// The paths object of `routes`.
fn paths_of(routes: Vec<Route>) -> Map<String, Value> {
    let mut paths = Map::new();
    for r in routes {
        let mut responses = Map::new();
        let mut ok = json!({"description": r.ok.1});
        if let Some(schema) = r.ok.2 {
            ok["content"] = json!({"application/json": {"schema": schema}});
        }
        responses.insert(r.ok.0.into(), ok);
        for e in r.errors {
            responses.insert((*e).into(), error_response(e));
        }
        // Every route with a JSON body can refuse the body itself.
        if r.body.is_some() {
            for e in ["400", "413", "415", "422"] {
                responses
                    .entry(e.to_owned())
                    .or_insert_with(|| error_response(e));
            }
        }
        // Any route can find its storage or the hashing queue unavailable.
        responses
            .entry("503".to_owned())
            .or_insert_with(|| error_response("503"));
        let mut op = json!({
            "summary": r.summary,
            "tags": [r.tag],
            "operationId": format!("{}_{}", r.method, r.path.trim_start_matches('/').replace(['/', '-', '{', '}'], "_")),
            "responses": responses,
        });
        if let Some(body) = r.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        if r.bearer {
            op["security"] = json!([{"bearer": []}]);
        }
        let params: Vec<Value> = r
            .path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}'))
            .map(|(name, _)| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method] = op;
    }
    paths
}

/// The document as JSON.
pub(crate) fn document(parts: &Parts) -> Value {
    let paths = paths_of(routes(parts));
    let mut token_pair = json!({
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "user_id": {"type": "string"},
            "access_token": {"type": "string"},
            "refresh_token": {"type": "string"},
            "token_type": {"type": "string"},
            "expires_in": {"type": "integer"},
            "refresh_expires_in": {"type": "integer"}
        }
    });
    if parts.cookie {
        token_pair["description"] =
            json!("In cookie mode the refresh token is in an HttpOnly cookie, not the body");
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "auth", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Registration, login, tokens, sessions, password and two-factor routes."},
        "servers": [{"url": if parts.mount.is_empty() { "/" } else { parts.mount.as_str() }}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "TokenPair": token_pair,
                "MfaChallenge": {"type": "object", "required": ["mfa_required", "mfa_token"], "properties": {
                    "mfa_required": {"type": "boolean"}, "mfa_token": {"type": "string"}, "expires_in": {"type": "integer"}}},
                "User": {"type": "object", "required": ["id", "email", "is_verified"], "properties": {
                    "id": {"type": "string"}, "email": {"type": "string"}, "is_verified": {"type": "boolean"},
                    "is_active": {"type": "boolean"}, "last_login": {"type": ["string", "null"]}}},
                "Session": {"type": "object", "properties": {
                    "id": {"type": "string"}, "current": {"type": "boolean"}, "created_at": {"type": "string"},
                    "last_used_at": {"type": ["string", "null"]}, "expires_at": {"type": "string"},
                    "ip": {"type": ["string", "null"]}, "user_agent": {"type": ["string", "null"]}}},
                "ApiKey": {"type": "object", "required": ["id", "name", "start", "scopes"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "start": {"type": "string"},
                    "scopes": {"type": "array", "items": {"type": "string"}}, "created_at": {"type": "string"},
                    "expires_at": {"type": ["string", "null"]}, "last_used_at": {"type": ["string", "null"]},
                    "last_ip": {"type": ["string", "null"]}, "enabled": {"type": "boolean"},
                    "rate_limit": {"type": ["object", "null"]}, "metadata": {"type": ["object", "null"]}}},
                "IssuedApiKey": {"allOf": [{"$ref": "#/components/schemas/ApiKey"}, {"type": "object", "required": ["key"], "properties": {
                    "key": {"type": "string", "description": "shown only in this answer"},
                    "previous_expires_at": {"type": ["string", "null"]}}}]},
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "detail": {"type": "string"}, "retry_after": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object"}}}}
            }
        }
    })
}

/// The administration routes' document (JSON), paths relative to the router.
pub(crate) fn admin_document(audit: bool, verification: bool) -> Value {
    let user = |path: &'static str,
                method: &'static str,
                summary: &'static str,
                ok: (&'static str, &'static str)| Route {
        method,
        path,
        summary,
        tag: "admin",
        bearer: true,
        body: None,
        ok: (ok.0, ok.1, None),
        errors: &["401", "403", "404"],
    };
    let mut all = vec![
        Route {
            method: "get",
            path: "/users",
            summary: "List accounts: q (email prefix), page, per_page, active, verified",
            tag: "admin",
            bearer: true,
            body: None,
            ok: ("200", "{users, page, per_page}", None),
            errors: &["401", "403"],
        },
        user(
            "/users/{id}",
            "get",
            "One account: state, second factor, sessions, lockouts",
            ("200", "The account"),
        ),
        user(
            "/users/{id}",
            "delete",
            "Delete the account (sessions end first)",
            ("204", "Deleted"),
        ),
        user(
            "/users/{id}/deactivate",
            "post",
            "Deactivate (every session ends)",
            ("204", "Deactivated"),
        ),
        user(
            "/users/{id}/reactivate",
            "post",
            "Reactivate",
            ("204", "Reactivated"),
        ),
        user(
            "/users/{id}/logout-all",
            "post",
            "End every session",
            ("200", "{sessions_ended}"),
        ),
        user(
            "/users/{id}/reset-mfa",
            "post",
            "Remove the second factor",
            ("204", "Removed"),
        ),
        user(
            "/users/{id}/unlock",
            "post",
            "Lift every lockout",
            ("204", "Unlocked"),
        ),
        user(
            "/users/{id}/roles",
            "get",
            "The account's roles (admin, owner), who granted them and when",
            ("200", "{roles: [{role, granted_by, granted_at}]}"),
        ),
        Route {
            method: "post",
            path: "/users/{id}/roles",
            summary: "Grant a role (`owner` only by an owner; the address must be proven)",
            tag: "admin",
            bearer: true,
            body: Some(obj(&["role"], &[])),
            ok: ("201", "{role, granted}", None),
            errors: &["401", "403", "404", "422"],
        },
        user(
            "/users/{id}/roles/{role}",
            "delete",
            "Revoke a role (another administrator's only by an owner; never the last holder)",
            ("204", "Revoked"),
        ),
    ];
    if audit {
        all.push(user(
            "/users/{id}/audit",
            "get",
            "The account's audit log (limit, before)",
            ("200", "{entries}, newest first"),
        ));
    }
    if verification {
        all.push(user(
            "/users/{id}/resend-verification",
            "post",
            "Mail a verification link again",
            ("202", "Accepted"),
        ));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "auth admin", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths_of(all),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"}, "detail": {"type": "string"}}}}
        }
    })
}

/// The document in utoipa's model. A document that does not fit the model (a bug, caught by
/// the tests of every combination) is logged and replaced by an empty one: never a panic.
pub(crate) fn openapi(parts: &Parts) -> OpenApi {
    model(document(parts))
}

/// `doc` as utoipa's model, or an empty document (logged) if it does not fit.
pub(crate) fn model(doc: Value) -> OpenApi {
    serde_json::from_value(doc).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the built-in OpenAPI document does not fit utoipa's model");
        OpenApi::default()
    })
}
/// The onboarding routes' document (JSON), paths relative to the router.
#[cfg(feature = "onboarding")]
pub(crate) fn onboarding_document() -> Value {
    let result = json!({"type": "object", "required": ["status", "current_step", "client_hint"], "properties": {
        "session_token": {"type": "string", "description": "from /start only"},
        "status": {"type": "string", "enum": ["in_progress", "completed"]},
        "current_step": {"type": ["string", "null"]},
        "client_hint": {"type": ["object", "null"], "properties": {
            "step": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "skippable": {"type": "boolean"},
            "fields": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": "string"}, "required": {"type": "boolean"}, "label": {"type": "string"}}}},
            "extra": {"type": "object"}}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "output": {"type": "object"},
        "access_token": {"type": "string"}, "refresh_token": {"type": "string"}, "user_id": {"type": "string"}
    }});
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}});
    let op = |summary: &str, body: Value, id: &str| {
        json!({
            "summary": summary, "tags": ["onboarding"], "operationId": id,
            "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": "The flow's state (step errors inside, per field)", "content": {"application/json": {"schema": result.clone()}}},
                "400": error("the body is not valid JSON"),
                "404": error("invalid: unknown or replaced session"),
                "409": error("completed, or conflict while another request holds the session"),
                "410": error("expired"),
                "413": error("the body is over the size limit"),
                "415": error("expected Content-Type: application/json"),
                "422": error("validation or invalid body"),
                "429": error("too many attempts (Retry-After)"),
                "503": error("unavailable: the database or the hashing queue (Retry-After)")
            }
        })
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "auth onboarding", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/start": {"post": op("Start a flow for an email", obj(&["email"], &[]), "post_onboarding_start")},
            "/advance": {"post": op("Submit data to the current step, or skip it", json!({"type": "object", "required": ["session_token"], "properties": {"session_token": {"type": "string"}, "skip": {"type": "boolean"}}, "additionalProperties": true}), "post_onboarding_advance")},
            "/resume": {"post": op("The current step again", obj(&["session_token"], &[]), "post_onboarding_resume")}
        }
    })
}
