//! `GET /activity`: the caller's own audit entries.

use auth_service::{AuditEntry, AuditQuery, AuthUser};
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::RouterState;
use crate::error::Rejection;
use crate::extract::Authenticated;

/// `?limit=&before=` (RFC 3339) of the audit routes.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    pub(crate) limit: Option<u64>,
    pub(crate) before: Option<String>,
}

impl Page {
    /// The query for `user` (and the attempts on `email`), or a 422 for a bad `before`.
    pub(crate) fn query(&self, user: &impl AuthUser) -> Result<AuditQuery, Rejection> {
        let mut q = AuditQuery::for_user(user.id().clone())
            .with_email(user.email())
            .limit(self.limit.unwrap_or(50));
        if let Some(before) = &self.before {
            let at =
                time::OffsetDateTime::parse(before, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        Rejection::Service(auth_service::Error::invalid(
                            "before",
                            "invalid",
                            "an RFC 3339 instant, such as the `time` of the last entry",
                        ))
                    })?;
            q = q.before(at);
        }
        Ok(q)
    }
}

/// An audit entry as the HTTP routes show it: `{kind, time, ip, user_agent, detail}`, and who
/// acted when an administrator did (`actor` for administrators, `by_admin` for the user).
pub(crate) fn entry_json(entry: &AuditEntry, show_actor: bool) -> Value {
    let time = entry
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .ok();
    let mut v = json!({
        "kind": entry.kind,
        "time": time,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "detail": entry.detail,
    });
    if show_actor {
        v["actor"] = json!(entry.actor);
    } else {
        v["by_admin"] = json!(entry.actor.is_some());
    }
    v
}

pub(super) async fn activity<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    Query(page): Query<Page>,
) -> Result<Response, Rejection> {
    let Some(audit) = &state.audit else {
        return Err(auth_service::Error::Unsupported("no audit log is configured".into()).into());
    };
    // Attempts on the address only from when this account came to hold it (its creation, or
    // the email change or claim that gave it the address): a later owner of an address never
    // sees an earlier owner's failed sign-ins, their addresses or their devices.
    let held_since = audit
        .list(
            &AuditQuery::for_user(user.id().clone())
                .kinds([
                    auth_service::AuthEventKind::UserRegistered,
                    auth_service::AuthEventKind::EmailChanged,
                    auth_service::AuthEventKind::AccountClaimed,
                ])
                .limit(1),
        )
        .await?
        .first()
        .map(|e| e.at);
    let mut query = page.query(&user)?;
    query.email_since = Some(held_since.unwrap_or(time::OffsetDateTime::UNIX_EPOCH));
    let entries = audit.list(&query).await?;
    let list: Vec<Value> = entries.iter().map(|e| entry_json(e, false)).collect();
    Ok(Json(json!({"entries": list})).into_response())
}
