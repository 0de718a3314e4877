//! Email delivery: the `Mailer` trait, a console mailer for development, SMTP (lettre) for
//! production, and the event handlers that turn auth events into messages with links.

use std::fmt;
use std::sync::Arc;

use auth::{AuthEvent, AuthEventKind, Error, EventBus, RequestScope, async_trait};

/// One message.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (it may contain a secret link or code).
    pub body: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Sends email.
///
/// ```
/// use auth_server::mail::{ConsoleMailer, Email, Mailer};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// ConsoleMailer.send(&Email { to: "a@example.com".into(), subject: "Hi".into(), body: "…".into() }).await.unwrap();
/// # });
/// ```
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Delivers `email`.
    async fn send(&self, email: &Email) -> Result<(), Error>;
}

/// Development only: writes each message, link included, to the log (target `auth::mail`) so
/// a developer (or a test) can follow it. `auth-server` refuses it in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleMailer;

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, email: &Email) -> Result<(), Error> {
        tracing::info!(
            target: "auth::mail",
            to = %email.to,
            subject = %email.subject,
            "development mail (console mailer; set AUTH_SMTP_URL to send real mail):\n{}",
            email.body
        );
        Ok(())
    }
}

/// SMTP through lettre, from `AUTH_SMTP_URL` (`smtp://user:pass@host:587?tls=required`,
/// `smtps://host:465`, or `smtp://localhost:25` without TLS).
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `url`, sending as `from`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming `AUTH_SMTP_URL` or `AUTH_MAIL_FROM`.
    pub fn new(url: &str, from: &str) -> Result<Self, Error> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|_| {
                auth::ConfigError::invalid(
                    "AUTH_SMTP_URL",
                    "must be an SMTP URL such as smtp://user:pass@host:587?tls=required",
                )
            })?
            .build();
        let from = from.parse().map_err(|_| {
            auth::ConfigError::invalid(
                "AUTH_MAIL_FROM",
                "must be an address such as Auth <auth@example.com>",
            )
        })?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), Error> {
        use lettre::AsyncTransport as _;
        let to = email
            .to
            .parse()
            .map_err(|e| Error::backend("addressing a message", e))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| Error::backend("building a message", e))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| Error::backend("sending mail over SMTP", e))?;
        tracing::info!(to = %email.to, subject = %email.subject, "mail sent");
        Ok(())
    }
}

/// Minimal percent-encoding for a token in a query string.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends the reset and verification emails, onboarding codes, email-change links and sign-in
/// links on `bus` through `mailer`, with links under `public_url`:
/// `{public_url}/reset-password?token=…`, `/verify-email?token=…`,
/// `/confirm-email-change?token=…` (to the new address; the old one gets a notice with
/// `/cancel-email-change?token=…`) and `/magic-link?token=…` (with the 6-digit code).
///
/// ```
/// # use auth_server::mail::*;
/// let bus = auth::EventBus::new();
/// install(&bus, std::sync::Arc::new(ConsoleMailer), "https://app.example.com");
/// assert!(bus.has_handler(auth::AuthEventKind::PasswordResetRequested));
/// ```
pub fn install(bus: &EventBus, mailer: Arc<dyn Mailer>, public_url: &str) {
    let base = public_url.trim_end_matches('/').to_owned();
    for kind in [
        AuthEventKind::PasswordResetRequested,
        AuthEventKind::EmailVerificationRequested,
        AuthEventKind::VerificationCodeGenerated,
        AuthEventKind::EmailChangeRequested,
        AuthEventKind::EmailChanged,
        AuthEventKind::MagicLinkRequested,
    ] {
        let mailer = Arc::clone(&mailer);
        let base = base.clone();
        bus.on_fn(kind, move |event| {
            let mailer = Arc::clone(&mailer);
            let base = base.clone();
            async move {
                let email = match event {
                    AuthEvent::PasswordResetRequested { email, token, .. } => Email {
                        to: email,
                        subject: "Reset your password".into(),
                        body: format!(
                            "Someone asked to reset the password of this account.\n\
                             Open this link within an hour to choose a new one:\n\n\
                             {base}/reset-password?token={}\n\n\
                             If it was not you, ignore this message.",
                            encode(token.expose_secret())
                        ),
                    },
                    AuthEvent::EmailVerificationRequested { email, token, .. } => Email {
                        to: email,
                        subject: "Confirm your email address".into(),
                        body: format!(
                            "Open this link to confirm your email address:\n\n\
                             {base}/verify-email?token={}",
                            encode(token.expose_secret())
                        ),
                    },
                    AuthEvent::VerificationCodeGenerated { email, code } => Email {
                        to: email,
                        subject: "Your verification code".into(),
                        body: format!(
                            "Your verification code is {}. It expires in 10 minutes.",
                            code.expose_secret()
                        ),
                    },
                    AuthEvent::EmailChangeRequested {
                        old_email,
                        new_email,
                        token,
                        cancel_token,
                        ..
                    } => {
                        // The old address first: it hears of the change before anyone can
                        // confirm it, with the way to stop it.
                        let notice = Email {
                            to: old_email,
                            subject: "Your email address is being changed".into(),
                            body: format!(
                                "Someone asked to change this account's email address to {new_email}.\n\
                                 If it was not you, open this link within 24 hours to stop it,\n\
                                 then change your password:\n\n\
                                 {base}/cancel-email-change?token={}",
                                encode(cancel_token.expose_secret())
                            ),
                        };
                        mailer
                            .send(&notice)
                            .await
                            .map_err(|e| -> auth::HandlerError { e.to_string().into() })?;
                        Email {
                            to: new_email,
                            subject: "Confirm your new email address".into(),
                            body: format!(
                                "Open this link within 24 hours to make this your account's \
                                 email address:\n\n\
                                 {base}/confirm-email-change?token={}",
                                encode(token.expose_secret())
                            ),
                        }
                    }
                    AuthEvent::EmailChanged {
                        old_email,
                        new_email,
                        ..
                    } => Email {
                        to: old_email,
                        subject: "Your email address was changed".into(),
                        body: format!(
                            "This account's email address is now {new_email}; this address \
                             no longer signs in. If it was not you, contact support at once."
                        ),
                    },
                    AuthEvent::MagicLinkRequested {
                        email, token, code, ..
                    } => Email {
                        to: email,
                        subject: "Your sign-in link".into(),
                        body: format!(
                            "Open this link within 10 minutes to sign in:\n\n\
                             {base}/magic-link?token={}\n\n\
                             Or enter this code: {}\n\n\
                             If you did not ask to sign in, ignore this message.",
                            encode(token.expose_secret()),
                            code.expose_secret()
                        ),
                    },
                    _ => return Ok(()),
                };
                mailer.send(&email).await.map_err(|e| e.to_string().into())
            }
        });
    }
}

/// Security notices by mail, sent in the background so no request waits for the mailer:
/// password changed, a second factor added, an account locked by failed sign-ins, and (when
/// `new_device` is set) a sign-in from a user agent not seen in the account's recent logins
/// (read from `audit`).
///
/// ```
/// # use auth_server::mail::*;
/// # use std::sync::Arc;
/// let auth = auth::AuthService::new(auth::AuthConfig::default(), auth::MemoryUserStore::new(),
///     auth::hash::MultiHasher::default(), auth::MemoryTokenBackend::new()).unwrap();
/// let audit: Arc<dyn auth::AuditStore> = Arc::new(auth::MemoryAuditStore::new());
/// install_notifications(&auth, Arc::new(ConsoleMailer), audit, true);
/// assert!(auth.events().has_handler(auth::AuthEventKind::PasswordChanged));
/// ```
pub fn install_notifications(
    auth: &auth::AuthService,
    mailer: Arc<dyn Mailer>,
    audit: Arc<dyn auth::AuditStore>,
    new_device: bool,
) {
    let mut kinds = vec![
        AuthEventKind::PasswordChanged,
        AuthEventKind::MfaEnabled,
        AuthEventKind::AccountLocked,
        // Every new way into the account, so a stolen session cannot add one silently.
        AuthEventKind::PasskeyAdded,
        AuthEventKind::ApiKeyCreated,
        AuthEventKind::IdentityLinked,
        AuthEventKind::RecoveryCodesRegenerated,
    ];
    if new_device {
        kinds.push(AuthEventKind::UserLogin);
    }
    for kind in kinds {
        // The handlers hold the user store, never the service: the service holds its event bus,
        // so a handler holding the service would keep it (and its database pools) alive forever.
        let users = Arc::clone(auth.parts().users);
        let (mailer, audit) = (Arc::clone(&mailer), Arc::clone(&audit));
        auth.events().clone().on_fn(kind, move |event| {
            let (users, mailer, audit) =
                (Arc::clone(&users), Arc::clone(&mailer), Arc::clone(&audit));
            let ctx = auth::RequestContext::current().unwrap_or_default();
            async move {
                let Some(email) = notice(users.as_ref(), &audit, &ctx, event).await? else {
                    return Ok(());
                };
                tokio::spawn(async move {
                    if let Err(e) = mailer.send(&email).await {
                        tracing::warn!(error = %e, "a security notice could not be mailed");
                    }
                });
                Ok(())
            }
        });
    }
}

/// What every notice of a new way in ends with.
const SECURE_HINT: &str = "If it was not you, sign in and choose \"Secure my account\" on your \
     account page: it signs out every other device and removes API keys, passkeys and connected \
     accounts you do not keep; then change your password.";

/// The notice for `event`, if it calls for one.
async fn notice(
    users: &dyn auth::UserStore<User = auth::User>,
    audit: &Arc<dyn auth::AuditStore>,
    ctx: &auth::RequestContext,
    event: AuthEvent,
) -> Result<Option<Email>, auth::HandlerError> {
    let from = ctx
        .meta
        .ip
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default();
    let to = |user: Option<auth::User>| user.map(|u| u.email);
    Ok(match event {
        AuthEvent::PasswordChanged { user_id } => {
            to(users.find_by_id(&user_id).await?).map(|to| Email {
                to,
                subject: "Your password was changed".into(),
                body: format!(
                    "The password of this account was changed{from}. If it was not you, reset \
                 your password at once (a reset ends every session)."
                ),
            })
        }
        AuthEvent::PasskeyAdded { user_id, name, .. } => {
            to(users.find_by_id(&user_id).await?).map(|to| Email {
                to,
                subject: "A passkey was added to your account".into(),
                body: format!(
                    "A passkey named \"{name}\" was added to this account{from}. {SECURE_HINT}"
                ),
            })
        }
        AuthEvent::ApiKeyCreated {
            owner: auth::ApiKeyOwner::User(user_id),
            ..
        } => to(users.find_by_id(&user_id).await?).map(|to| Email {
            to,
            subject: "An API key was created for your account".into(),
            body: format!("An API key that acts for this account was created{from}. {SECURE_HINT}"),
        }),
        AuthEvent::IdentityLinked { user_id, provider } => {
            to(users.find_by_id(&user_id).await?).map(|to| Email {
                to,
                subject: "An account was connected to yours".into(),
                body: format!(
                    "A {provider} account was connected to this account{from}: it can sign in to it. {SECURE_HINT}"
                ),
            })
        }
        AuthEvent::RecoveryCodesRegenerated { user_id } => {
            to(users.find_by_id(&user_id).await?).map(|to| Email {
                to,
                subject: "New recovery codes were made for your account".into(),
                body: format!(
                    "New two-step recovery codes were made for this account{from}; the old ones no longer work. {SECURE_HINT}"
                ),
            })
        }
        AuthEvent::MfaEnabled { user_id } => to(users.find_by_id(&user_id).await?).map(|to| Email {
            to,
            subject: "Two-factor authentication was turned on".into(),
            body: format!(
                "An authenticator app was added to this account{from}. If it was not you, \
                 reset your password and contact support."
            ),
        }),
        AuthEvent::AccountLocked { identifier, .. } => {
            // Only the per-account login lockout names an address.
            let Some(address) = identifier
                .strip_prefix("login:")
                .and_then(|rest| rest.split_once('|'))
                .map(|(_, email)| email.to_owned())
            else {
                return Ok(None);
            };
            to(users.find_by_email(&address).await.ok().flatten()).map(|to| Email {
                to,
                subject: "Sign-in to your account was locked".into(),
                body: format!(
                    "Too many wrong passwords were tried for this account{from}, so signing in \
                     from there is paused for a while. If it was not you, nothing else is \
                     needed: your password was not accepted."
                ),
            })
        }
        AuthEvent::UserLogin { user_id, email } => {
            let agent = ctx.meta.user_agent.clone().unwrap_or_default();
            let logins = audit
                .list(
                    &auth::AuditQuery::for_user(user_id)
                        .kinds([AuthEventKind::UserLogin])
                        .limit(50),
                )
                .await?;
            // The newest entry is this login (the audit log runs first); a first login is not
            // a new device.
            let earlier = logins.iter().skip(1);
            let known = earlier
                .clone()
                .any(|e| e.user_agent.as_deref().unwrap_or_default() == agent);
            (logins.len() > 1 && !known).then(|| Email {
                to: email,
                subject: "New sign-in to your account".into(),
                body: format!(
                    "Someone signed in to your account{from} with a device not seen before \
                     ({}). If it was not you, change your password and end your other \
                     sessions.",
                    if agent.is_empty() {
                        "unknown"
                    } else {
                        agent.as_str()
                    }
                ),
            })
        }
        _ => None,
    })
}
