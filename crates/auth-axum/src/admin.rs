//! The administration router: find an account, see why it cannot log in, and act on it.

use std::sync::Arc;

use auth_service::RequestScope;
use auth_service::{
    AuditQuery, AuditStore, AuthEventKind, AuthService, AuthUser, Error, RequestContext, Role,
    UserId, UserQuery,
};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::client::TrustedProxies;
use crate::error::{ApiError, Rejection, unauthorized};
use crate::extract::bearer;
use crate::router::activity::{Page, entry_json};

/// Who may administer: accounts holding the `admin` role (a grant stored on the account, see
/// [`AuthService::grant_role`]; never an address matched against a list), and (when allowed)
/// API keys with the `admin` scope, of service accounts or of accounts that hold the role at
/// the moment of the request. A key whose owner lost the role, or never held it, administers
/// nothing whatever its scopes.
///
/// ```
/// use auth_axum::AdminAccess;
/// let access = AdminAccess::granted().allow_api_keys(true);
/// assert!(!access.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    api_keys: bool,
}

impl AdminAccess {
    /// The scope an API key needs.
    pub const SCOPE: &'static str = "admin";

    /// Administrators are the accounts holding the `admin` role.
    ///
    /// ```
    /// let _ = auth_axum::AdminAccess::granted();
    /// ```
    #[must_use]
    pub fn granted() -> Self {
        Self { api_keys: false }
    }

    /// Formerly: administrators by listed email. An address never confers authority now; this
    /// is [`AdminAccess::granted`], and the addresses are ignored. To give a listed address the
    /// role when its owner proves it, use [`AuthService::with_role_on_proof`].
    ///
    /// ```
    /// #[allow(deprecated)]
    /// let access = auth_axum::AdminAccess::emails(["ops@example.com"]);
    /// # let _ = access;
    /// ```
    #[deprecated(
        note = "addresses no longer confer authority: use AdminAccess::granted and AuthService::grant_role / with_role_on_proof"
    )]
    pub fn emails<S: AsRef<str>>(emails: impl IntoIterator<Item = S>) -> Self {
        drop(emails.into_iter());
        Self::granted()
    }

    /// Also lets API keys with the `admin` scope in (service accounts', and administrators'
    /// own).
    ///
    /// ```
    /// let _ = auth_axum::AdminAccess::granted().allow_api_keys(true);
    /// ```
    #[must_use]
    pub fn allow_api_keys(mut self, allow: bool) -> Self {
        self.api_keys = allow;
        self
    }

    /// Never true: holders of the role may always administer. (Kept for callers that decided
    /// whether to mount the router with it.)
    ///
    /// ```
    /// assert!(!auth_axum::AdminAccess::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The administrator acting on a request (inserted by the admin router's guard): the account,
/// or `None` for a service account's key.
#[derive(Debug, Clone)]
struct Actor(Option<UserId>);

/// The administration routes, to mount under a prefix (`auth-server` uses `/admin`):
///
/// | route | answer |
/// |---|---|
/// | `GET /users?q=&page=&per_page=&active=&verified=` | 200 `{users: [...], page, per_page}`: `q` is an email prefix |
/// | `GET /users/{id}` | 200 the user with `second_factor`, `usable_password`, `sessions` (or `null`), `locks` (current lockouts from the audit log) |
/// | `POST /users/{id}/deactivate` / `reactivate` | 204 (deactivation ends every session) |
/// | `POST /users/{id}/logout-all` | 200 `{sessions_ended}` |
/// | `POST /users/{id}/reset-mfa` | 204: the second factor is removed |
/// | `POST /users/{id}/unlock` | 204: every lockout of the account is lifted |
/// | `POST /users/{id}/resend-verification` | 202 (with [`AdminRouter::with_email_verification`]) |
/// | `DELETE /users/{id}` | 204: sessions end, keys and factors go, then the account |
/// | `GET /users/{id}/audit?limit=&before=` | 200 `{entries: [{kind, time, ip, user_agent, detail, actor}]}` (with [`AdminRouter::with_audit`]) |
///
/// Every route needs an administrator ([`AdminAccess`]): 401 without credentials or with
/// invalid ones (the same 401 as everywhere), 403 `{"error": "forbidden"}` for anyone else.
/// An unknown id is 404. Each action runs through `AuthService` (its events, its revocation)
/// inside a [`RequestContext`] naming the administrator (`user:<id>` or `api_key:<id>`), so
/// the audit log says who did it.
///
/// ```
/// use auth_service::*;
/// use auth_axum::{AdminAccess, AdminRouter};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let app: axum::Router = axum::Router::new()
///     .nest("/admin", AdminRouter::new(auth, AdminAccess::emails(["ops@example.com"])).build());
/// # let _ = app;
/// ```
pub struct AdminRouter<U: AuthUser> {
    state: AdminState<U>,
}

impl<U: AuthUser> std::fmt::Debug for AdminRouter<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRouter")
            .field("access", &self.state.access)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct AdminState<U: AuthUser> {
    auth: AuthService<U>,
    access: Arc<AdminAccess>,
    audit: Option<Arc<dyn AuditStore>>,
    verification: Option<auth_service::EmailVerificationService<U>>,
    proxies: TrustedProxies,
}

impl<U: AuthUser> AdminRouter<U> {
    /// The routes over `auth`, for `access`.
    #[must_use]
    pub fn new(auth: AuthService<U>, access: AdminAccess) -> Self {
        Self {
            state: AdminState {
                auth,
                access: Arc::new(access),
                audit: None,
                verification: None,
                proxies: TrustedProxies::none(),
            },
        }
    }

    /// Adds `GET /users/{id}/audit`, and lockouts in `GET /users/{id}` and `unlock`.
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<dyn AuditStore>) -> Self {
        self.state.audit = Some(audit);
        self
    }

    /// Adds `POST /users/{id}/resend-verification`.
    #[must_use]
    pub fn with_email_verification(
        mut self,
        verification: auth_service::EmailVerificationService<U>,
    ) -> Self {
        self.state.verification = Some(verification);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies only.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.state.proxies = proxies;
        self
    }

    /// The OpenAPI 3.1 document of these routes (paths relative to where it is mounted).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let doc = auth_axum::AdminRouter::new(auth, auth_axum::AdminAccess::default()).openapi();
    /// assert!(doc.paths.paths.contains_key("/users/{id}/unlock"));
    /// ```
    #[must_use]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        crate::openapi::model(crate::openapi::admin_document(
            self.state.audit.is_some(),
            self.state.verification.is_some(),
        ))
    }

    /// The router, to mount under a prefix with [`Router::nest`].
    pub fn build(self) -> Router {
        let state = self.state;
        let mut router = Router::new()
            .route("/users", get(list::<U>))
            .route("/users/{id}", get(show::<U>).delete(delete_user::<U>))
            .route("/users/{id}/deactivate", post(deactivate::<U>))
            .route("/users/{id}/reactivate", post(reactivate::<U>))
            .route("/users/{id}/logout-all", post(logout_all::<U>))
            .route("/users/{id}/reset-mfa", post(reset_mfa::<U>))
            .route("/users/{id}/unlock", post(unlock::<U>))
            .route("/users/{id}/roles", get(roles::<U>).post(grant::<U>))
            .route(
                "/users/{id}/roles/{role}",
                axum::routing::delete(revoke::<U>),
            );
        if state.audit.is_some() {
            router = router.route("/users/{id}/audit", get(audit::<U>));
        }
        if state.verification.is_some() {
            router = router.route(
                "/users/{id}/resend-verification",
                post(resend_verification::<U>),
            );
        }
        router
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                require_admin::<U>,
            ))
            .with_state(state)
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, Json(json!({"error": "forbidden"}))).into_response()
}

/// Authenticates the caller, refuses non-administrators, and runs the route inside a
/// [`RequestContext`] naming the administrator.
async fn require_admin<U: AuthUser>(
    State(state): State<AdminState<U>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let meta = state.proxies.meta(&parts);
    let (actor, acting) = match crate::schemes::api_key(&state.auth, &parts.headers) {
        Some(Ok(key)) => match state.auth.authenticate_api_key(key, meta.ip).await {
            Ok(auth) => {
                // A user's key acts for its user: it administers only while its owner holds
                // the role (the service decides, from the grant, not from the key's scopes).
                if !state.access.api_keys {
                    return forbidden();
                }
                match state.auth.api_key_carries(&auth, AdminAccess::SCOPE).await {
                    Ok(true) => {}
                    Ok(false) => return forbidden(),
                    Err(e) => return ApiError(e).into_response(),
                }
                (
                    format!("api_key:{}", auth.key.id),
                    auth.user.as_ref().map(|u| u.id().clone()),
                )
            }
            Err(e) => return ApiError(e).into_response(),
        },
        Some(Err(e)) => return ApiError(e).into_response(),
        None => match bearer(&parts.headers) {
            Ok(Some(token)) => match state.auth.authenticate(token).await {
                Ok(user) => match state.auth.has_role(user.id(), Role::Admin).await {
                    Ok(true) if user.is_verified() => {
                        (format!("user:{}", user.id()), Some(user.id().clone()))
                    }
                    Ok(_) => return forbidden(),
                    Err(e) => return ApiError(e).into_response(),
                },
                Err(e) => return ApiError(e).into_response(),
            },
            _ => return unauthorized(),
        },
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(Actor(acting));
    RequestContext::new(meta)
        .with_actor(actor)
        .scope(next.run(req))
        .await
}

/// `?q=&page=&per_page=&active=&verified=`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    page: Option<u64>,
    per_page: Option<u64>,
    active: Option<bool>,
    verified: Option<bool>,
}

fn rfc3339(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

fn user_json(user: &impl AuthUser) -> Value {
    json!({
        "id": user.id().to_string(),
        "email": user.email(),
        "is_active": user.is_active(),
        "is_verified": user.is_verified(),
        "last_login": rfc3339(user.last_login()),
    })
}

async fn list<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Rejection> {
    let page = q.page.unwrap_or(1).max(1);
    let per_page = q
        .per_page
        .unwrap_or(UserQuery::DEFAULT_LIMIT)
        .clamp(1, UserQuery::MAX_LIMIT);
    let mut query = UserQuery::new()
        .email_prefix(q.q.as_deref().unwrap_or_default())
        .page(page, per_page);
    if let Some(active) = q.active {
        query = query.active(active);
    }
    if let Some(verified) = q.verified {
        query = query.verified(verified);
    }
    let users = state.auth.list_users(&query).await?;
    Ok(Json(json!({
        "users": users.iter().map(user_json).collect::<Vec<_>>(),
        "page": page,
        "per_page": per_page,
    }))
    .into_response())
}

/// The account's current lockouts, from its audit log: `account_locked` entries whose lockout
/// has not ended, newer than the last `account_unlocked`.
async fn locks<U: AuthUser>(state: &AdminState<U>, user: &U) -> Result<Vec<Value>, Error> {
    let Some(audit) = &state.audit else {
        return Ok(Vec::new());
    };
    let now = state.auth.clock().now();
    let entries = audit
        .list(
            &AuditQuery::for_user(user.id().clone())
                .with_email(user.email())
                .kinds([AuthEventKind::AccountLocked, AuthEventKind::AccountUnlocked])
                .limit(100),
        )
        .await?;
    let mut found = Vec::new();
    for entry in entries {
        if entry.kind == AuthEventKind::AccountUnlocked.as_str() {
            break;
        }
        let secs = entry.detail["retry_after_secs"].as_i64().unwrap_or(0);
        let until = entry.at + time::Duration::seconds(secs);
        if until > now {
            found.push(json!({
                "throttle": entry.detail["throttle"],
                "client": entry.detail.get("client"),
                "until": rfc3339(Some(until)),
            }));
        }
    }
    Ok(found)
}

async fn find<U: AuthUser>(state: &AdminState<U>, id: &str) -> Result<U, Rejection> {
    Ok(state
        .auth
        .find_user(&UserId::new(id))
        .await?
        .ok_or(Error::UserNotFound)?)
}

async fn show<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let status = state.auth.account_status(&UserId::new(id)).await?;
    let mut body = user_json(&status.user);
    body["second_factor"] = json!(status.second_factor);
    body["usable_password"] = json!(status.usable_password);
    body["sessions"] = match &status.sessions {
        Some(list) => json!(
            list.iter()
                .map(|s| json!({
                    "id": s.id,
                    "created_at": rfc3339(Some(s.created_at)),
                    "last_used_at": rfc3339(s.last_used_at),
                    "expires_at": rfc3339(Some(s.expires_at)),
                    "ip": s.meta.ip.map(|ip| ip.to_string()),
                    "user_agent": s.meta.user_agent,
                }))
                .collect::<Vec<_>>()
        ),
        None => Value::Null,
    };
    body["locks"] = json!(locks(&state, &status.user).await?);
    Ok(Json(body).into_response())
}

async fn deactivate<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    state
        .auth
        .may_act_on(actor.0.as_ref(), user.id(), true)
        .await?;
    state.auth.set_active(user.id(), false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reactivate<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    state.auth.set_active(user.id(), true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn logout_all<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    state
        .auth
        .may_act_on(actor.0.as_ref(), user.id(), false)
        .await?;
    let ended = state.auth.logout_all(user.id()).await?;
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

async fn reset_mfa<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    state
        .auth
        .may_act_on(actor.0.as_ref(), user.id(), false)
        .await?;
    state.auth.reset_second_factor(user.id()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unlock<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    let clients: Vec<String> = locks(&state, &user)
        .await?
        .iter()
        .filter_map(|l| l["client"].as_str().map(str::to_owned))
        .collect();
    state.auth.unlock(user.id(), &clients).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn resend_verification<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    if let Some(verification) = &state.verification {
        verification.request(user.id()).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn delete_user<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let id = UserId::new(id);
    state.auth.may_act_on(actor.0.as_ref(), &id, true).await?;
    if state.auth.delete_user(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::UserNotFound.into())
    }
}

async fn audit<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    let Some(audit) = &state.audit else {
        return Err(Error::Unsupported("no audit log is configured".into()).into());
    };
    let entries = audit.list(&page.query(&user)?).await?;
    Ok(Json(json!({
        "entries": entries.iter().map(|e| entry_json(e, true)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `{role}`: `admin` or `owner`.
#[derive(Debug, Deserialize)]
struct RoleBody {
    role: String,
}

fn role_of(name: &str) -> Result<Role, Rejection> {
    Role::parse(name)
        .ok_or_else(|| Error::invalid("role", "unknown_role", "one of: admin, owner").into())
}

async fn roles<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    let user = find(&state, &id).await?;
    let grants = state.auth.roles(user.id()).await?;
    Ok(Json(json!({
        "roles": grants.iter().map(|g| json!({
            "role": g.role.as_str(),
            "granted_by": g.granted_by,
            "granted_at": rfc3339(Some(g.granted_at)),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Grants a role (the service's rules: `owner` only by an owner, a proven address).
async fn grant<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<Response, Rejection> {
    let role = role_of(&body.role)?;
    let user = find(&state, &id).await?;
    let added = state
        .auth
        .grant_role_as(actor.0.as_ref(), user.id(), role)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"role": role.as_str(), "granted": added})),
    )
        .into_response())
}

/// Revokes a role (the service's rules: another administrator's only by an owner, never the
/// last holder).
async fn revoke<U: AuthUser>(
    State(state): State<AdminState<U>>,
    Extension(actor): Extension<Actor>,
    Path((id, role)): Path<(String, String)>,
) -> Result<Response, Rejection> {
    let role = role_of(&role)?;
    let user = find(&state, &id).await?;
    if state
        .auth
        .revoke_role_as(actor.0.as_ref(), user.id(), role)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::UserNotFound.into())
    }
}
