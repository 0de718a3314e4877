//! Sign-in by email: a link and a 6-digit code, either of which logs in once, within minutes.
//!
//! One single-use record per request, named by a MAC of the address and the code, which the
//! link and the code both reach: whichever is used first consumes it. The link carries the
//! address, the code and its expiry under a MAC; the code alone is 20 bits, so its use is
//! throttled per address (a few wrong codes lock code sign-in for that address). The second
//! factor still applies: an account that has one gets a challenge, not a session.

use std::time::Duration;

use super::links::{b64, unb64};
use super::throttle::client_bucket;
use super::{AuthService, LoginOptions, LoginOutcome};
use crate::audit::RequestContext;
use crate::ephemeral::ChallengeRecord;
use crate::error::{Error, Result};
use crate::events::{AuthEvent, LoginFailureReason};
use crate::secret::SecretString;
use crate::token::SessionMeta;
use crate::user::{AuthUser, normalize_email};

const PURPOSE: &str = "magic-link";

/// How long a sign-in link and code work.
pub const MAGIC_LINK_LIFETIME: Duration = Duration::from_secs(10 * 60);

impl<U: AuthUser> AuthService<U> {
    /// Asks for a sign-in link and code for `email`. The answer is the same whether an account
    /// has the address or not, and takes the same time: for an existing, active account the
    /// record is written and `MagicLinkRequested` (the link's token and the code) emitted in
    /// the background. Requests are throttled per address and client with the login limiter
    /// (`magic:` keys).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for input that is not an address; [`Error::RateLimited`];
    /// [`Error::Unsupported`] without a challenge store; [`Error::Configuration`] without a
    /// signing secret; [`Error::Backend`].
    ///
    /// ```
    /// use auth_core::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-signing").build()?;
    /// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_challenge_store(ephemeral::MemoryChallengeStore::new());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// auth.events().on_fn(AuthEventKind::MagicLinkRequested, move |e| {
    ///     let tx = tx.clone();
    ///     async move { if let AuthEvent::MagicLinkRequested { token, code, .. } = e { tx.send((token, code)).ok(); } Ok(()) }
    /// });
    /// auth.register("mo@example.com", "violet-otter-sings-42").await?;
    /// auth.request_magic_link("mo@example.com", &SessionMeta::new()).await?;
    /// auth.request_magic_link("nobody@example.com", &SessionMeta::new()).await?; // the same answer
    /// let (_token, code) = rx.recv().await.unwrap();
    /// let LoginOutcome::Session(session) =
    ///     auth.sign_in_with_code("mo@example.com", code.expose_secret(), LoginOptions::new()).await?
    /// else { unreachable!() };
    /// assert_eq!(session.user.email, "mo@example.com");
    /// // Once: the code (and the link) are spent.
    /// assert!(auth.sign_in_with_code("mo@example.com", code.expose_secret(), LoginOptions::new()).await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn request_magic_link(&self, email: &str, meta: &SessionMeta) -> Result<()> {
        let store = std::sync::Arc::clone(self.challenge_store()?);
        let email = normalize_email(email)?;
        let client = meta.ip.map(client_bucket);
        let key = format!("magic:{}|{email}", client.as_deref().unwrap_or("*"));
        self.reserve(self.limiter.as_ref(), &key).await?;
        let code = six_digits();
        let expires = self.clock.now() + MAGIC_LINK_LIFETIME;
        let exp = expires.unix_timestamp().to_string();
        // The same work for every address: the MACs, one lookup.
        let mac = self.link_mac(PURPOSE, &[&email, &code, &exp])?;
        let record = self.record_key(PURPOSE, &[&email, &code])?;
        let user = match self.users.find_by_email(&email).await? {
            Some(u) if u.is_active() => u,
            _ => return Ok(()),
        };
        let token = [b64(&email), code.clone(), exp, mac].join(".");
        let events = self.events.clone();
        let ctx = RequestContext::current().unwrap_or_default();
        // Written and mailed after the answer, so neither the write nor a slow mailer tells
        // which addresses have accounts.
        tokio::spawn(ctx.scope(async move {
            let created = store
                .create(&ChallengeRecord::new(record, user.id().clone(), expires))
                .await;
            if let Err(e) = created {
                tracing::error!(error = %e, "storing a sign-in link failed: nothing mailed");
                return;
            }
            events
                .emit(AuthEvent::MagicLinkRequested {
                    user_id: user.id().clone(),
                    email: user.email().to_owned(),
                    token: SecretString::new(token),
                    code: SecretString::new(code),
                })
                .await;
        }));
        Ok(())
    }

    /// Signs in with a sign-in link's token: a session, or the second factor's challenge.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for a forged, used or superseded link; [`Error::TokenExpired`];
    /// [`Error::InactiveUser`] folded into `TokenInvalid`; [`Error::Backend`].
    pub async fn sign_in_with_magic_link(
        &self,
        token: &str,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let parts: Vec<&str> = token.split('.').collect();
        let [email, code, exp, mac] = parts.as_slice() else {
            return Err(Error::TokenInvalid);
        };
        let email = unb64(email)?;
        if !self.link_mac_ok(mac, PURPOSE, &[&email, code, exp])? {
            return Err(Error::TokenInvalid);
        }
        self.check_expiry(exp)?;
        match self
            .spend_magic(&email, code, options, "sign_in_link")
            .await?
        {
            Some(outcome) => Ok(outcome),
            None => Err(Error::TokenInvalid),
        }
    }

    /// Signs in with the address and the 6-digit code of a sign-in mail. Wrong codes are
    /// throttled per address (the login limiter's policy, `magic-code:` keys): a few wrong
    /// guesses lock code sign-in for the address until the lockout ends, by which time the
    /// code has expired.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] for a wrong, used or expired code (or an unknown
    /// address: the same answer); [`Error::RateLimited`]; [`Error::Backend`].
    pub async fn sign_in_with_code(
        &self,
        email: &str,
        code: &str,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let Ok(email) = normalize_email(email) else {
            return Err(Error::InvalidCredentials);
        };
        let key = format!("magic-code:{email}");
        let grant = self.reserve(self.limiter.as_ref(), &key).await?;
        let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let outcome = if well_formed {
            self.spend_magic(&email, code, options, "sign_in_code")
                .await?
        } else {
            None
        };
        match outcome {
            Some(outcome) => {
                self.limiter.reset(&key).await?;
                Ok(outcome)
            }
            None => {
                self.events
                    .emit(AuthEvent::UserLoginFailed {
                        identifier: email,
                        reason: LoginFailureReason::BadPassword,
                    })
                    .await;
                if grant.last {
                    self.locked(self.limiter.as_ref(), &key).await;
                }
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// Consumes the record of (`email`, `code`) once and signs its user in; `None` when there
    /// is no live record (wrong, used, expired) or its user cannot log in.
    async fn spend_magic(
        &self,
        email: &str,
        code: &str,
        options: LoginOptions,
        route: &'static str,
    ) -> Result<Option<LoginOutcome<U>>> {
        let store = self.challenge_store()?;
        let record = self.record_key(PURPOSE, &[email, code])?;
        let Some(user_id) = store.attempt(&record, self.clock.now(), 1).await? else {
            return Ok(None);
        };
        if !store.consume(&record).await? {
            return Ok(None);
        }
        let mut user = match self.users.find_by_id(&user_id).await? {
            Some(u) if u.is_active() && u.email() == email => u,
            _ => return Ok(None),
        };
        if !user.is_verified() {
            // The mailbox's owner signs in to an account nobody had proven: it becomes theirs,
            // and nothing set up before stays.
            self.claim(&user, route, false).await?;
            user = match self.users.find_by_id(&user_id).await? {
                Some(u) => u,
                None => return Ok(None),
            };
        }
        if let Some(gate) = &self.second_factor
            && gate.is_required(user.id()).await?
        {
            return Ok(Some(LoginOutcome::Challenge(
                gate.open_challenge(user.id()).await?,
            )));
        }
        Ok(Some(LoginOutcome::Session(
            self.start_session(user, options).await?,
        )))
    }
}

/// A uniformly drawn 6-digit code.
fn six_digits() -> String {
    let bytes = crate::random::bytes(8);
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes);
    // 2^64 is so much larger than 10^6 that the modulo bias is below 10^-13.
    format!("{:06}", u64::from_le_bytes(n) % 1_000_000)
}
