//! The router: every route, the health and readiness answers, the mailer.

use std::sync::Arc;
use std::time::Duration;

use crate::settings::Settings;
use crate::stack::{Stack, stack};
use crate::{http, mail, page};
use auth::{ChangeFeed, Error, RevocationMirror, UserCache};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use sea_orm::DatabaseConnection;

/// The mailer the settings ask for: SMTP with `AUTH_SMTP_URL`, else the console mailer.
///
/// # Errors
///
/// [`Error::Configuration`] for a bad SMTP URL or sender.
pub fn mailer(settings: &Settings) -> Result<Arc<dyn mail::Mailer>, Error> {
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(mail::SmtpMailer::new(
            url.expose_secret(),
            &settings.mail_from,
        )?),
        None => {
            tracing::warn!(
                "AUTH_SMTP_URL is not set: emails (with their links) go to this log; \
                 set AUTH_SMTP_URL to send real mail"
            );
            Arc::new(mail::ConsoleMailer)
        }
    })
}

/// The service: `/auth` (the auth router, its OpenAPI document at `/auth/openapi.json`),
/// `/onboarding` (routes and page), `/openapi.json` (both routers in one document), `/health`,
/// `/ready` (database reachable); request ids, request logs, CORS.
///
/// # Errors
///
/// [`Error::Configuration`] for an unusable JWT secret, MFA key or mail setting.
pub fn app(settings: &Settings, db: DatabaseConnection) -> Result<Router, Error> {
    app_with_mailer(settings, db, mailer(settings)?)
}

/// [`app`] with a given mailer.
///
/// # Errors
///
/// As [`app`].
pub fn app_with_mailer(
    settings: &Settings,
    db: DatabaseConnection,
    mailer: Arc<dyn mail::Mailer>,
) -> Result<Router, Error> {
    let Stack {
        auth,
        feed,
        redis,
        revocations,
        jwt_keys: _,
        signing_keys,
        mfa,
        onboarding,
        audit,
        db,
    } = stack(settings, db)?;
    let oauth = oauth_of(settings, redis.as_ref(), &db)?;
    let health = Health {
        db: db.clone(),
        feed,
        redis,
        revocations,
        users: auth.user_cache().cloned(),
    };
    mail::install(auth.events(), Arc::clone(&mailer), &settings.public_url);
    mail::install_notifications(
        &auth,
        mailer,
        Arc::clone(&audit),
        settings.notify_new_device,
    );
    // Administrators are the accounts holding the `admin` role; /admin is always there (it
    // answers 403 to everyone else).
    let access =
        auth_axum::AdminAccess::granted().allow_api_keys(settings.admin_api_keys.unwrap_or(true));
    let admin = auth_axum::AdminRouter::new(auth.clone(), access)
        .with_audit(Arc::clone(&audit))
        .with_email_verification(auth::sign::EmailVerificationService::new(auth.clone())?)
        .trusted_proxies(settings.trusted_proxies.clone());
    let router = auth_router(settings, auth, mfa, audit, oauth)?;
    let document = Arc::new(openapi_document(&router, &admin)?);
    let app = Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { Json((*document).clone()) }
            }),
        )
        .nest("/auth", router.build())
        .nest("/onboarding", {
            let api = auth_axum::onboarding_router_with_proxies(
                onboarding,
                settings.trusted_proxies.clone(),
            );
            if settings.pages {
                api.merge(page::routes())
            } else {
                api
            }
        })
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/ready", get(move || ready(health.clone())))
        .nest("/admin", admin.build());
    let app = if settings.pages {
        app.route("/onboarding/", get(page::index))
            .merge(page::link_routes(
                &settings.mfa_issuer,
                &settings.config.password_policy().help_texts(),
                &settings
                    .oauth_providers
                    .iter()
                    .map(auth::oauth::Provider::name)
                    .collect::<Vec<_>>(),
                settings.trusted_device_lifetime.as_secs() / 86_400,
            ))
    } else {
        app
    };
    let app = match signing_keys {
        Some(keys) => app.route("/.well-known/jwks.json", jwks_route(settings, keys)),
        None => app,
    };
    Ok(http::layers(app, settings))
}

/// Provider sign-in, when providers are configured: redirect states and codes beside the
/// passkey ceremonies.
fn oauth_of(
    settings: &Settings,
    redis: Option<&auth::redis::Redis>,
    db: &DatabaseConnection,
) -> Result<Option<auth::oauth::OAuth>, Error> {
    if settings.oauth_providers.is_empty() {
        return Ok(None);
    }
    let ceremonies: Arc<dyn auth::ephemeral::CeremonyStore> = match redis {
        Some(redis) => Arc::new(auth::redis::RedisCeremonyStore::new(redis.clone())),
        None => Arc::new(auth::passkeys::db::DbCeremonyStore::new(db.clone())),
    };
    let mut oauth = auth::oauth::OAuth::new(
        &format!("{}/auth/oauth", settings.public_url.trim_end_matches('/')),
        ceremonies,
    )?;
    for provider in &settings.oauth_providers {
        oauth = oauth.with_provider(provider.clone());
    }
    Ok(Some(
        oauth.allow_redirects(&settings.oauth_redirect_allowlist)?,
    ))
}

/// The `/auth` routes with every flow the server offers.
fn auth_router(
    settings: &Settings,
    auth: auth::AuthService,
    mfa: auth::mfa::Mfa,
    audit: Arc<dyn auth::AuditStore>,
    oauth: Option<auth::oauth::OAuth>,
) -> Result<auth_axum::AuthRouter<auth::User>, Error> {
    let mut router = auth_axum::AuthRouter::new(auth.clone())
        .mounted_at("/auth")
        .with_mfa(mfa)
        .with_password_reset(auth::sign::PasswordResetService::new(auth.clone())?)
        .with_email_verification(auth::sign::EmailVerificationService::new(auth)?)
        .with_email_change()
        .with_magic_link()
        .secure_cookies(!settings.public_url.starts_with("http://"))
        .with_audit(audit)
        .trusted_proxies(settings.trusted_proxies.clone());
    if let Some(oauth) = oauth {
        router = router.with_oauth(oauth);
    }
    if settings.refresh_cookie {
        let mut cookie = auth_axum::RefreshCookie::new().path("/auth");
        if settings.public_url.starts_with("http://") {
            cookie = cookie.insecure();
        }
        for origin in &settings.cors_origins {
            cookie = cookie.allow_origin(origin);
        }
        router = router.refresh_cookie(cookie);
    }
    Ok(router)
}

/// One document for the whole service at `/openapi.json`: `/auth`, `/onboarding`, `/admin`.
fn openapi_document(
    router: &auth_axum::AuthRouter<auth::User>,
    admin: &auth_axum::AdminRouter<auth::User>,
) -> Result<serde_json::Value, Error> {
    let mut auth_doc = router.openapi();
    auth_doc.servers = None;
    let mut document = utoipa::openapi::OpenApi::default()
        .nest("/auth", auth_doc.clone())
        .nest("/onboarding", auth_axum::onboarding_openapi())
        .nest("/admin", admin.openapi());
    document.info = auth_doc.info.clone();
    document.components = auth_doc.components.clone();
    serde_json::to_value(&document).map_err(|e| Error::backend("building the OpenAPI document", e))
}

/// `/.well-known/jwks.json` over `keys`; a retired key stays published while a token it
/// signed can still be valid.
fn jwks_route(settings: &Settings, keys: crate::keys::SigningKeys) -> axum::routing::MethodRouter {
    let lifetimes = settings.config.lifetimes();
    let retention = lifetimes.refresh().max(lifetimes.absolute());
    get(move || {
        let keys = keys.clone();
        async move {
            // Never an empty document (cached for minutes) before the keys load.
            match keys.ready().await {
                Ok(set) => jwks(&set, retention),
                Err(e) => auth_axum::ApiError(e).into_response(),
            }
        }
    })
}

/// `/.well-known/jwks.json`: the public keys (next, current, retired ones still needed), with
/// `kid`; cacheable for five minutes (the next key is published long before it signs).
pub(crate) fn jwks(keys: &auth::jwt::JwtKeySet, retention: Duration) -> axum::response::Response {
    let document = keys.jwks(auth::Clock::now(&auth::SystemClock), retention);
    (
        [
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
            (axum::http::header::CONTENT_TYPE, "application/jwk-set+json"),
        ],
        document.to_string(),
    )
        .into_response()
}

/// What `/ready` reports on.
#[derive(Clone)]
pub(crate) struct Health {
    db: DatabaseConnection,
    feed: Arc<dyn ChangeFeed>,
    redis: Option<auth::redis::Redis>,
    revocations: Option<RevocationMirror>,
    users: Option<UserCache<auth::User>>,
}

/// How long a storage failure keeps `/ready` at 503 after it was last seen.
pub(crate) const STORAGE_FAILURE_MEMORY: Duration = Duration::from_secs(15);

/// `/ready`: 503 when the database cannot be reached, or when storage refused a write in the
/// last 15 s (a full disk, a read-only file); otherwise 200 `"ready"` (the instance
/// answers correctly either way), with `"answers_from": "memory"` when token and user checks
/// are answered from memory, `"database"` while the change feed is down (or the mirror is
/// loading or full) and every check queries the database instead: correct, slower.
pub(crate) async fn ready(health: Health) -> axum::response::Response {
    // A probe is answered within a second either way: a database or Redis that does not
    // answer in time is unreachable for this purpose.
    let within = Duration::from_secs(1);
    let db = match tokio::time::timeout(within, health.db.ping()).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within a second".to_owned()),
    };
    if let Err(e) = db {
        tracing::warn!(error = %e, "database not reachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "database": "unreachable"})),
        )
            .into_response();
    }
    if let Some(redis) = &health.redis
        && let Err(e) = match tokio::time::timeout(within, redis.ping()).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within a second".to_owned()),
        }
    {
        tracing::warn!(error = %e, "Redis not reachable: logins are refused and token checks fail");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "database": "reachable",
                "redis": "unreachable",
            })),
        )
            .into_response();
    }
    // Reads (and the ping) work on a full disk or a read-only file; writes do not. A storage
    // failure within the last 15 s makes the instance unready until writes work again.
    if let Some((during, ago)) = auth::storage::recent_failure(STORAGE_FAILURE_MEMORY) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "database": "reachable",
                "storage": "refuses writes (full disk, quota or read-only)",
                "during": during,
                "seconds_ago": ago.as_secs(),
            })),
        )
            .into_response();
    }
    let feed = health.feed.status();
    let mirror = health.revocations.as_ref().map(RevocationMirror::status);
    let from_memory = feed.live && mirror.as_ref().is_none_or(|m| m.ready);
    let cache = health.users.as_ref().map(UserCache::status);
    Json(serde_json::json!({
        "status": "ready",
        "answers_from": if from_memory { "memory" } else { "database" },
        "redis": health.redis.as_ref().map(|_| "reachable"),
        "database": "reachable",
        "change_feed": {
            "live": feed.live,
            "channel": feed.channel,
            "detail": feed.detail,
            "delivered": feed.delivered,
        },
        "revocations": mirror.map(|m| serde_json::json!({
            "in_memory": m.ready,
            "entries": m.entries,
            "max_entries": m.max_entries,
            "database_checks": m.store_checks,
            "outage_grace": m.in_outage_grace,
        })),
        "user_cache": cache.map(|c| serde_json::json!({
            "live": c.live,
            "entries": c.entries,
            "hits": c.hits,
            "misses": c.misses,
        })),
    }))
    .into_response()
}
