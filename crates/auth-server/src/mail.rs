//! Email delivery: the `Mailer` trait, a console mailer for development, SMTP (lettre) for
//! production, and the event handlers that turn auth events into messages with links.

use std::fmt;
use std::sync::Arc;

use auth::{AuthEvent, AuthEventKind, Error, EventBus, async_trait};

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

/// Sends the reset and verification emails (and onboarding codes) on `bus` through `mailer`,
/// with links under `public_url`: `{public_url}/reset-password?token=…` and
/// `{public_url}/verify-email?token=…`.
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
                    _ => return Ok(()),
                };
                mailer.send(&email).await.map_err(|e| e.to_string().into())
            }
        });
    }
}
