//! The built-in steps: register, verify email, set up TOTP, profile.

use std::time::Duration;

use auth_service::{
    AuthEvent, AuthEventKind, AuthService, AuthUser, ConfigError, Error, Result, SecretString,
    async_trait, constant_time_eq, random,
};
use serde_json::{Map, Value};

use crate::engine::{OnboardingStep, StepContext};
use crate::types::{ClientHint, StepOutcome};

/// Session flag: the email already had an account (the register step created none).
pub(crate) const EXISTING_ACCOUNT: &str = "_existing_account";

fn text<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// Email and password (with confirmation), checked against the service's password policy.
/// An email that already has an account does not reveal itself: the flow goes on the same way,
/// at the same cost, and only the mailbox's owner learns it at the verification step.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterStep;

#[async_trait]
impl<U: AuthUser> OnboardingStep<U> for RegisterStep {
    fn name(&self) -> &str {
        "register"
    }

    async fn hint(&self, ctx: &mut StepContext<'_, U>) -> Result<ClientHint> {
        Ok(
            ClientHint::new("register", "Create your account", "Choose a password.")
                .field("email", "email", true, "Email")
                .field("password", "password", true, "Password")
                .field("password_confirm", "password", true, "Password (again)")
                .extra("email", ctx.session.email.clone()),
        )
    }

    async fn submit(
        &self,
        ctx: &mut StepContext<'_, U>,
        data: &Map<String, Value>,
    ) -> Result<StepOutcome> {
        let password = text(data, "password").unwrap_or_default();
        let confirm = text(data, "password_confirm").unwrap_or_default();
        if let Some(email) = text(data, "email")
            && auth_service::normalize_email(email).ok().as_deref()
                != Some(ctx.session.email.as_str())
        {
            return Ok(StepOutcome::invalid(
                "email",
                "use the email address this sign-up started with",
            ));
        }
        if password.is_empty() {
            return Ok(StepOutcome::invalid("password", "enter a password"));
        }
        if !constant_time_eq(password.as_bytes(), confirm.as_bytes()) {
            return Ok(StepOutcome::invalid(
                "password_confirm",
                "the passwords do not match",
            ));
        }
        if let Err(Error::Validation(errors)) = ctx
            .auth
            .check_new_password(password, Some(&ctx.session.email))
            .await
        {
            return Ok(StepOutcome::Invalid(
                errors
                    .errors()
                    .iter()
                    .map(|e| ("password".to_owned(), e.message.clone()))
                    .collect(),
            ));
        }
        // The service's sign-up path: throttled per client, the same hashing work for new and
        // existing emails, and the account created inactive until the flow completes.
        let Some(user) = ctx
            .auth
            .register_pending(&ctx.session.email, password, &ctx.meta)
            .await?
        else {
            // Not this session's user: nothing later may act on that account.
            ctx.session
                .data
                .insert(EXISTING_ACCOUNT.into(), Value::Bool(true));
            return Ok(StepOutcome::Complete);
        };
        ctx.session.user_id = Some(user.id().clone());
        Ok(StepOutcome::Complete)
    }
}

/// A 6-digit code sent through the `VerificationCodeGenerated` event (the flow refuses to
/// start if nothing listens), stored only hashed, valid 10 minutes, 5 attempts per session
/// that a resend does not reset, and a resend cooldown (60 s). Send `{code}` to check it,
/// `{resend: true}` for a new one.
#[derive(Debug, Clone)]
pub struct VerifyEmailStep {
    ttl: Duration,
    attempts: u64,
    cooldown: Duration,
}

impl Default for VerifyEmailStep {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            attempts: 5,
            cooldown: Duration::from_secs(60),
        }
    }
}

impl VerifyEmailStep {
    /// 10-minute codes, 5 attempts, 60-second resend cooldown.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn code_hash(session_id: &str, code: &str) -> String {
        random::sha256_hex(&format!(
            "auth-onboarding/v1/email-code:{session_id}:{code}"
        ))
    }

    async fn send<U: AuthUser>(&self, ctx: &mut StepContext<'_, U>) -> Result<()> {
        let bytes = random::bytes(4);
        let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % 1_000_000;
        let code = format!("{n:06}");
        let now = ctx.now().unix_timestamp();
        let hash = Self::code_hash(&ctx.session.id, &code);
        let state = ctx.state();
        state.insert("code_hash".into(), Value::String(hash));
        state.insert("sent_at".into(), Value::from(now));
        let email = ctx.session.email.clone();
        ctx.auth
            .events()
            .emit(AuthEvent::VerificationCodeGenerated {
                email,
                code: SecretString::from(code),
            })
            .await;
        Ok(())
    }
}

#[async_trait]
impl<U: AuthUser> OnboardingStep<U> for VerifyEmailStep {
    fn name(&self) -> &str {
        "verify_email"
    }

    fn check(&self, auth: &AuthService<U>) -> Result<()> {
        if auth
            .events()
            .has_handler(AuthEventKind::VerificationCodeGenerated)
        {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                "verify_email step",
                "needs a handler for VerificationCodeGenerated that delivers the code (a mailer)",
            )
            .into())
        }
    }

    async fn hint(&self, ctx: &mut StepContext<'_, U>) -> Result<ClientHint> {
        if !ctx.state().contains_key("code_hash") {
            self.send(ctx).await?;
        }
        let now = ctx.now().unix_timestamp();
        let sent = ctx
            .state()
            .get("sent_at")
            .and_then(Value::as_i64)
            .unwrap_or(now);
        let cooldown = i64::try_from(self.cooldown.as_secs()).unwrap_or(60);
        let wait = (sent + cooldown - now).max(0);
        Ok(ClientHint::new(
            "verify_email",
            "Check your email",
            "Enter the 6-digit code we sent you.",
        )
        .field("code", "code", true, "Code")
        .extra("email", ctx.session.email.clone())
        .extra("resend_available_in", wait))
    }

    async fn submit(
        &self,
        ctx: &mut StepContext<'_, U>,
        data: &Map<String, Value>,
    ) -> Result<StepOutcome> {
        let now = ctx.now().unix_timestamp();
        if data.get("resend").and_then(Value::as_bool) == Some(true) {
            let sent = ctx
                .state()
                .get("sent_at")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let cooldown = i64::try_from(self.cooldown.as_secs()).unwrap_or(60);
            if now < sent + cooldown {
                return Ok(StepOutcome::invalid(
                    "resend",
                    &format!(
                        "wait {} s before asking for another code",
                        sent + cooldown - now
                    ),
                ));
            }
            self.send(ctx).await?;
            return Ok(StepOutcome::Stay);
        }
        let used = ctx
            .state()
            .get("attempts")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if used >= self.attempts {
            return Ok(StepOutcome::invalid(
                "code",
                "too many wrong codes: start again",
            ));
        }
        ctx.state().insert("attempts".into(), Value::from(used + 1));
        let code = text(data, "code").unwrap_or_default().trim().to_owned();
        let stored = ctx
            .state()
            .get("code_hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let sent = ctx
            .state()
            .get("sent_at")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(600);
        let candidate = Self::code_hash(&ctx.session.id, &code);
        if stored.is_empty() || !constant_time_eq(candidate.as_bytes(), stored.as_bytes()) {
            return Ok(StepOutcome::invalid("code", "wrong code"));
        }
        if now >= sent + ttl {
            return Ok(StepOutcome::invalid(
                "code",
                "the code expired: ask for a new one",
            ));
        }
        ctx.state().remove("code_hash");
        if ctx.session.data.contains_key(EXISTING_ACCOUNT) {
            return Ok(StepOutcome::invalid(
                "code",
                "this email already has an account: log in, or reset your password",
            ));
        }
        let Some(user) = ctx.session.user_id.clone() else {
            return Err(Error::UserNotFound);
        };
        // The code came back inside the onboarding flow that created the account: the proof
        // rests on the flow as well as the mailbox, so the password chosen in it stays.
        ctx.auth
            .prove_address(&user, auth_service::AddressProof::InSession)
            .await?;
        Ok(StepOutcome::Complete)
    }
}

/// Enrols a TOTP factor (feature `totp`): the client gets the `otpauth://` URI, the secret and
/// a QR code (SVG), then sends `{code}` from the app; the recovery codes are handed out once in
/// the result's `output`. An account that already has a factor skips it.
///
/// ```
/// # use auth_mfa::*;
/// let mfa = Mfa::new(MemoryMfaStore::new(), SecretCipher::new("k", &[1u8; 32])?, MfaConfig::new("Example"))?;
/// let step = auth_onboarding::SetupTotpStep::optional(mfa);
/// # let _ = step;
/// # Ok::<(), auth_service::Error>(())
/// ```
#[cfg(feature = "totp")]
#[derive(Debug, Clone)]
pub struct SetupTotpStep {
    mfa: auth_mfa::Mfa,
    optional: bool,
}

#[cfg(feature = "totp")]
impl SetupTotpStep {
    /// A step that must be completed, enrolling through `mfa`.
    #[must_use]
    pub fn required(mfa: auth_mfa::Mfa) -> Self {
        Self {
            mfa,
            optional: false,
        }
    }

    /// A step the user may skip, enrolling through `mfa`.
    #[must_use]
    pub fn optional(mfa: auth_mfa::Mfa) -> Self {
        Self {
            mfa,
            optional: true,
        }
    }
}

#[cfg(feature = "totp")]
#[async_trait]
impl<U: AuthUser> OnboardingStep<U> for SetupTotpStep {
    fn name(&self) -> &str {
        "setup_totp"
    }

    fn skippable(&self) -> bool {
        self.optional
    }

    async fn is_required(&self, ctx: &mut StepContext<'_, U>) -> Result<bool> {
        // Nothing to set up for an account that already has a factor.
        match &ctx.session.user_id {
            Some(id) => Ok(!self.mfa.status(id).await?.enabled),
            None => Ok(true),
        }
    }

    async fn hint(&self, ctx: &mut StepContext<'_, U>) -> Result<ClientHint> {
        let user = ctx.user().await?;
        let enrollment = match self.mfa.pending_enrollment(&user).await? {
            Some(e) => e,
            None => self.mfa.begin_enrollment(&user).await?,
        };
        Ok(ClientHint::new(
            "setup_totp",
            "Set up two-factor authentication",
            "Scan the QR code with an authenticator app, then enter the 6-digit code it shows.",
        )
        .field("code", "code", true, "Code from the app")
        .extra("otpauth_uri", enrollment.otpauth_uri().expose_secret())
        .extra("secret", enrollment.secret_base32().expose_secret())
        .extra("qr_svg", enrollment.qr_svg()?))
    }

    async fn submit(
        &self,
        ctx: &mut StepContext<'_, U>,
        data: &Map<String, Value>,
    ) -> Result<StepOutcome> {
        let user = ctx.session.user_id.clone().ok_or(Error::UserNotFound)?;
        let code = text(data, "code").unwrap_or_default();
        match self.mfa.confirm_enrollment(&user, code).await {
            Ok(codes) => {
                ctx.output
                    .insert("recovery_codes".into(), Value::from(codes.expose()));
                Ok(StepOutcome::Complete)
            }
            Err(Error::InvalidCredentials) => Ok(StepOutcome::invalid("code", "wrong code")),
            Err(Error::RateLimited { retry_after }) => Ok(StepOutcome::invalid(
                "code",
                &format!(
                    "too many wrong codes; try again in {} s",
                    retry_after.as_secs()
                ),
            )),
            Err(e) => Err(e),
        }
    }
}

/// Declared profile fields, required and optional; nothing else is written.
#[derive(Debug, Clone, Default)]
pub struct ProfileStep {
    required: Vec<String>,
    optional: Vec<String>,
}

impl ProfileStep {
    /// A step asking for `required` and `optional` text fields.
    ///
    /// ```
    /// let step = auth_onboarding::ProfileStep::new(["first_name", "last_name"], ["bio"]);
    /// # let _ = step;
    /// ```
    pub fn new<R, O>(
        required: impl IntoIterator<Item = R>,
        optional: impl IntoIterator<Item = O>,
    ) -> Self
    where
        R: Into<String>,
        O: Into<String>,
    {
        Self {
            required: required.into_iter().map(Into::into).collect(),
            optional: optional.into_iter().map(Into::into).collect(),
        }
    }
}

/// The longest profile value accepted.
const MAX_PROFILE_VALUE: usize = 1_000;

#[async_trait]
impl<U: AuthUser> OnboardingStep<U> for ProfileStep {
    fn name(&self) -> &str {
        "profile"
    }

    async fn hint(&self, _ctx: &mut StepContext<'_, U>) -> Result<ClientHint> {
        let label = |f: &str| {
            let mut s = f.replace('_', " ");
            if let Some(first) = s.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            s
        };
        let mut hint = ClientHint::new("profile", "About you", "Complete your profile.");
        for f in &self.required {
            hint = hint.field(f, "text", true, &label(f));
        }
        for f in &self.optional {
            hint = hint.field(f, "text", false, &label(f));
        }
        Ok(hint)
    }

    async fn submit(
        &self,
        ctx: &mut StepContext<'_, U>,
        data: &Map<String, Value>,
    ) -> Result<StepOutcome> {
        let mut errors = Vec::new();
        let mut values = Map::new();
        for (field, required) in self
            .required
            .iter()
            .map(|f| (f, true))
            .chain(self.optional.iter().map(|f| (f, false)))
        {
            match text(data, field).map(str::trim) {
                Some(v) if v.len() > MAX_PROFILE_VALUE => {
                    errors.push((field.clone(), format!("at most {MAX_PROFILE_VALUE} bytes")));
                }
                Some(v) if !v.is_empty() => {
                    values.insert(field.clone(), Value::String(v.to_owned()));
                }
                _ if required => errors.push((field.clone(), "this field is required".into())),
                _ => {}
            }
        }
        if !errors.is_empty() {
            return Ok(StepOutcome::Invalid(errors));
        }
        let user = ctx.session.user_id.clone().ok_or(Error::UserNotFound)?;
        ctx.auth.update_profile(&user, values).await?;
        Ok(StepOutcome::Complete)
    }
}
