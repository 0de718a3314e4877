//! The engine: `start`, `advance`, `resume` over a pipeline of steps.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_service::{
    AuthEvent, AuthService, AuthUser, Error, LoginOptions, Result, SecretString, SessionMeta,
    UserId, async_trait, normalize_email, random,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::store::{SessionRecord, SessionStore};
use crate::types::{ClientHint, OnboardingError, OnboardingResult, OnboardingStatus, StepOutcome};

/// What a step sees: the services, the session, its own state, and a place for output.
pub struct StepContext<'a, U: AuthUser> {
    /// The auth service (users, hashing, events, clock).
    pub auth: &'a AuthService<U>,
    /// The session (email, user once known).
    pub session: &'a mut SessionRecord,
    /// Data handed to the client once (recovery codes).
    pub output: &'a mut Map<String, Value>,
    /// The client making this request (its address throttles sign-ups).
    pub meta: SessionMeta,
    step: String,
}

impl<U: AuthUser> fmt::Debug for StepContext<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepContext")
            .field("step", &self.step)
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> StepContext<'_, U> {
    /// This step's private state in the session (kept between requests).
    pub fn state(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .session
            .data
            .entry(self.step.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(map) => map,
            _ => unreachable!("made an object above"),
        }
    }

    /// The time now (the service's clock).
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.auth.clock().now()
    }

    /// The session's user, loaded.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`] when no earlier step created or found one.
    pub async fn user(&self) -> Result<U> {
        let id = self.session.user_id.clone().ok_or(Error::UserNotFound)?;
        self.auth.find_user(&id).await?.ok_or(Error::UserNotFound)
    }
}

/// One step of a pipeline. Implement it for your own steps (the cookbook's "accept terms").
///
/// ```
/// use auth_service::{User, async_trait, Result};
/// use auth_onboarding::{ClientHint, OnboardingStep, StepContext, StepOutcome};
/// use serde_json::{Map, Value};
///
/// struct AcceptTermsStep;
///
/// #[async_trait]
/// impl OnboardingStep<User> for AcceptTermsStep {
///     fn name(&self) -> &str { "accept_terms" }
///     async fn hint(&self, _ctx: &mut StepContext<'_, User>) -> Result<ClientHint> {
///         Ok(ClientHint::new("accept_terms", "Terms of Service", "Please accept our terms to continue.")
///             .field("accepted", "checkbox", true, "I accept the Terms of Service"))
///     }
///     async fn submit(&self, _ctx: &mut StepContext<'_, User>, data: &Map<String, Value>) -> Result<StepOutcome> {
///         if data.get("accepted").and_then(Value::as_bool) != Some(true) {
///             return Ok(StepOutcome::invalid("accepted", "You must accept the terms"));
///         }
///         Ok(StepOutcome::Complete)
///     }
/// }
/// ```
#[async_trait]
pub trait OnboardingStep<U: AuthUser>: Send + Sync + 'static {
    /// Its name in the pipeline and in client hints.
    fn name(&self) -> &str;

    /// Whether `skip: true` is accepted.
    fn skippable(&self) -> bool {
        false
    }

    /// Whether the step applies to this session; `false` skips it automatically.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    async fn is_required(&self, ctx: &mut StepContext<'_, U>) -> Result<bool> {
        let _ = ctx;
        Ok(true)
    }

    /// Checks the engine's setup when the flow starts (for example that something delivers
    /// verification codes).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] saying what is missing.
    fn check(&self, auth: &AuthService<U>) -> Result<()> {
        let _ = auth;
        Ok(())
    }

    /// How to render the step now (it may act, such as sending a first code).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    async fn hint(&self, ctx: &mut StepContext<'_, U>) -> Result<ClientHint>;

    /// Handles submitted data.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] (bad input is [`StepOutcome::Invalid`], not an error).
    async fn submit(
        &self,
        ctx: &mut StepContext<'_, U>,
        data: &Map<String, Value>,
    ) -> Result<StepOutcome>;
}

/// Settings of the engine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OnboardingConfig {
    /// How long a session lives (1 hour).
    pub session_ttl: Duration,
    /// Whether `start` invalidates the email's earlier sessions (true).
    pub invalidate_previous: bool,
}

impl Default for OnboardingConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(3600),
            invalidate_previous: true,
        }
    }
}

/// How long a request may hold a session before another may take it over.
const LEASE: Duration = Duration::from_secs(30);

/// The largest session token accepted.
const MAX_SESSION_TOKEN: usize = 128;

/// The onboarding engine over an [`AuthService`], a [`SessionStore`] and a pipeline of steps.
/// Cheap to clone.
pub struct Onboarding<U: AuthUser> {
    inner: Arc<Inner<U>>,
}

impl<U: AuthUser> Clone for Onboarding<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<U: AuthUser> {
    auth: AuthService<U>,
    store: Arc<dyn SessionStore>,
    steps: Vec<Arc<dyn OnboardingStep<U>>>,
    config: OnboardingConfig,
}

impl<U: AuthUser> fmt::Debug for Onboarding<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Onboarding")
            .field("pipeline", &self.pipeline())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Onboarding`].
pub struct OnboardingBuilder<U: AuthUser> {
    auth: AuthService<U>,
    store: Arc<dyn SessionStore>,
    steps: Vec<Arc<dyn OnboardingStep<U>>>,
    config: OnboardingConfig,
}

impl<U: AuthUser> fmt::Debug for OnboardingBuilder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnboardingBuilder")
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> OnboardingBuilder<U> {
    /// Appends a step to the pipeline.
    #[must_use]
    pub fn step(mut self, step: impl OnboardingStep<U>) -> Self {
        self.steps.push(Arc::new(step));
        self
    }

    /// Other settings.
    #[must_use]
    pub fn config(mut self, config: OnboardingConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty pipeline, duplicate step names, or a step whose
    /// check fails (no verification-code listener).
    pub fn build(self) -> Result<Onboarding<U>> {
        if self.steps.is_empty() {
            return Err(auth_service::ConfigError::invalid(
                "onboarding pipeline",
                "needs at least one step",
            )
            .into());
        }
        let mut names: Vec<&str> = self.steps.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(auth_service::ConfigError::invalid(
                "onboarding pipeline",
                "has two steps with the same name",
            )
            .into());
        }
        if self.config.session_ttl.is_zero() {
            return Err(auth_service::ConfigError::invalid(
                "onboarding session_ttl",
                "must be positive",
            )
            .into());
        }
        Ok(Onboarding {
            inner: Arc::new(Inner {
                auth: self.auth,
                store: self.store,
                steps: self.steps,
                config: self.config,
            }),
        })
    }
}

fn hash(token: &str) -> String {
    random::sha256_hex(token)
}

impl<U: AuthUser> Onboarding<U> {
    /// A builder over `auth` and `store`.
    pub fn builder(auth: AuthService<U>, store: impl SessionStore) -> OnboardingBuilder<U> {
        OnboardingBuilder {
            auth,
            store: Arc::new(store),
            steps: Vec::new(),
            config: OnboardingConfig::default(),
        }
    }

    /// The step names, in order.
    #[must_use]
    pub fn pipeline(&self) -> Vec<String> {
        self.inner
            .steps
            .iter()
            .map(|s| s.name().to_owned())
            .collect()
    }

    /// The service.
    #[must_use]
    pub fn auth(&self) -> &AuthService<U> {
        &self.inner.auth
    }

    fn context<'a>(
        &'a self,
        session: &'a mut SessionRecord,
        output: &'a mut Map<String, Value>,
        step: &str,
        meta: &SessionMeta,
    ) -> StepContext<'a, U> {
        StepContext {
            auth: &self.inner.auth,
            session,
            output,
            meta: meta.clone(),
            step: step.to_owned(),
        }
    }

    fn now(&self) -> OffsetDateTime {
        auth_service::truncate_to_micros(self.inner.auth.clock().now())
    }

    /// Starts a flow for `email` (earlier open sessions for it end, unless configured
    /// otherwise). The session token is returned once and stored only hashed.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a malformed email; [`Error::Configuration`] when a step's
    /// check fails (for example nothing listens for verification codes).
    pub async fn start(
        &self,
        email: &str,
    ) -> std::result::Result<OnboardingResult<U>, OnboardingError> {
        let email = normalize_email(email)?;
        for step in &self.inner.steps {
            step.check(&self.inner.auth)?;
        }
        let token = random::token(32);
        let now = self.now();
        let ttl =
            time::Duration::try_from(self.inner.config.session_ttl).unwrap_or(time::Duration::HOUR);
        let mut session = SessionRecord::new(
            random::token(16),
            hash(&token),
            email.clone(),
            now,
            now + ttl,
        );
        // Created already held by this request: the final save releases it.
        session.lease_until = Some(now + time::Duration::try_from(LEASE).unwrap_or_default());
        self.inner.store.create(&session).await?;
        if self.inner.config.invalidate_previous {
            let n = self
                .inner
                .store
                .invalidate_email(&email, &session.id)
                .await?;
            if n > 0 {
                tracing::info!(ended = n, "earlier onboarding sessions invalidated");
            }
        }
        self.inner
            .auth
            .events()
            .emit(AuthEvent::OnboardingStarted {
                email,
                session_id: session.id.clone(),
                pipeline: self.pipeline(),
            })
            .await;
        // Settle on the first step that applies, render it, release.
        let mut result = self.finish(session, Vec::new(), Map::new()).await?;
        result.session_token = Some(SecretString::from(token));
        Ok(result)
    }

    /// Loads a live session, or the typed reason it is not.
    async fn load(&self, token: &str) -> std::result::Result<SessionRecord, OnboardingError> {
        if token.is_empty() || token.len() > MAX_SESSION_TOKEN {
            return Err(OnboardingError::Invalid);
        }
        let session = self
            .inner
            .store
            .find(&hash(token))
            .await?
            .ok_or(OnboardingError::Invalid)?;
        if session.invalidated {
            return Err(OnboardingError::Invalid);
        }
        if session.completed {
            return Err(OnboardingError::Completed);
        }
        if session.expires_at <= self.now() {
            self.inner
                .auth
                .events()
                .emit(AuthEvent::OnboardingSessionExpired {
                    session_id: session.id.clone(),
                    email: session.email.clone(),
                })
                .await;
            return Err(OnboardingError::Expired);
        }
        Ok(session)
    }

    /// Takes the session for this request: a compare-and-set that also sets a lease, so a
    /// concurrent request gets [`OnboardingError::Conflict`] before doing anything.
    async fn claim(&self, token: &str) -> std::result::Result<SessionRecord, OnboardingError> {
        let mut session = self.load(token).await?;
        let now = self.now();
        if session.lease_until.is_some_and(|until| until > now) {
            return Err(OnboardingError::Conflict);
        }
        session.lease_until = Some(now + time::Duration::try_from(LEASE).unwrap_or_default());
        session.version += 1;
        if !self.inner.store.save(&session).await? {
            return Err(OnboardingError::Conflict);
        }
        Ok(session)
    }

    /// Submits `data` to the current step, or skips it (`skip`, optional steps only).
    ///
    /// # Errors
    ///
    /// [`OnboardingError::Invalid`] (unknown or invalidated token), `Expired`, `Completed`,
    /// `Conflict` (another request holds the session); [`Error::Backend`] inside `Auth`.
    pub async fn advance(
        &self,
        token: &str,
        data: Map<String, Value>,
        skip: bool,
    ) -> std::result::Result<OnboardingResult<U>, OnboardingError> {
        self.advance_with(token, data, skip, &SessionMeta::default())
            .await
    }

    /// [`advance`](Self::advance) for a client: `meta.ip` throttles the sign-up the register
    /// step makes (the service's `signup:` limit), like `POST /register`.
    ///
    /// # Errors
    ///
    /// As [`advance`](Self::advance); `Auth(Error::RateLimited)` when the address signed up
    /// too often.
    pub async fn advance_with(
        &self,
        token: &str,
        data: Map<String, Value>,
        skip: bool,
        meta: &SessionMeta,
    ) -> std::result::Result<OnboardingResult<U>, OnboardingError> {
        let mut session = self.claim(token).await?;
        let mut output = Map::new();
        let mut errors = Vec::new();
        let index = usize::try_from(session.step_index).unwrap_or(usize::MAX);
        let Some(step) = self.inner.steps.get(index).cloned() else {
            return Err(OnboardingError::Completed);
        };
        let name = step.name().to_owned();
        let events = self.inner.auth.events().clone();
        if skip {
            if step.skippable() {
                events
                    .emit(AuthEvent::OnboardingStepSkipped {
                        session_id: session.id.clone(),
                        step_name: name,
                    })
                    .await;
                session.step_index += 1;
            } else {
                errors.push(("skip".to_owned(), "this step cannot be skipped".to_owned()));
            }
        } else {
            let outcome = {
                let mut ctx = self.context(&mut session, &mut output, &name, meta);
                step.submit(&mut ctx, &data).await
            };
            match outcome {
                Ok(StepOutcome::Complete) => {
                    events
                        .emit(AuthEvent::OnboardingStepCompleted {
                            session_id: session.id.clone(),
                            step_name: name,
                            user_id: session.user_id.clone(),
                        })
                        .await;
                    session.step_index += 1;
                }
                Ok(StepOutcome::Stay) => {}
                Ok(StepOutcome::Invalid(errs)) => {
                    events
                        .emit(AuthEvent::OnboardingStepFailed {
                            session_id: session.id.clone(),
                            step_name: name,
                            errors: errs.iter().map(|(f, m)| format!("{f}: {m}")).collect(),
                        })
                        .await;
                    errors = errs;
                }
                Err(e) => {
                    self.release(session).await?;
                    return Err(e.into());
                }
            }
        }
        self.finish(session, errors, output).await
    }

    /// The current step again (for example after a reload).
    ///
    /// # Errors
    ///
    /// As [`advance`](Self::advance).
    pub async fn resume(
        &self,
        token: &str,
    ) -> std::result::Result<OnboardingResult<U>, OnboardingError> {
        let session = self.claim(token).await?;
        self.finish(session, Vec::new(), Map::new()).await
    }

    /// Releases the lease without other changes.
    async fn release(&self, mut session: SessionRecord) -> Result<()> {
        session.lease_until = None;
        session.version += 1;
        self.inner.store.save(&session).await.map(|_| ())
    }

    /// Skips steps that do not apply, completes the flow at the end, renders the current
    /// step, and saves (releasing the lease).
    async fn finish(
        &self,
        mut session: SessionRecord,
        errors: Vec<(String, String)>,
        mut output: Map<String, Value>,
    ) -> std::result::Result<OnboardingResult<U>, OnboardingError> {
        let outcome = self.settle(&mut session, &mut output).await;
        let (status, hint, auth) = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.release(session).await?;
                return Err(e.into());
            }
        };
        let current_step = hint.as_ref().map(|h| h.step.clone());
        session.lease_until = None;
        session.version += 1;
        if !self.inner.store.save(&session).await? {
            return Err(OnboardingError::Conflict);
        }
        Ok(OnboardingResult {
            session_token: None,
            status,
            current_step,
            client_hint: hint,
            errors,
            output,
            auth,
        })
    }

    #[allow(clippy::type_complexity)]
    async fn settle(
        &self,
        session: &mut SessionRecord,
        output: &mut Map<String, Value>,
    ) -> Result<(
        OnboardingStatus,
        Option<ClientHint>,
        Option<auth_service::AuthResult<U>>,
    )> {
        loop {
            let index = usize::try_from(session.step_index).unwrap_or(usize::MAX);
            let Some(step) = self.inner.steps.get(index).cloned() else {
                break;
            };
            let name = step.name().to_owned();
            let mut ctx = self.context(session, output, &name, &SessionMeta::default());
            if step.is_required(&mut ctx).await? {
                let mut hint = step.hint(&mut ctx).await?;
                hint.skippable = step.skippable();
                return Ok((OnboardingStatus::InProgress, Some(hint), None));
            }
            drop(ctx);
            self.inner
                .auth
                .events()
                .emit(AuthEvent::OnboardingStepSkipped {
                    session_id: session.id.clone(),
                    step_name: name,
                })
                .await;
            session.step_index += 1;
        }
        // Every step done: log the user in through the configured token backend. A flow that
        // began with someone else's email never ends logged in as them.
        if session.data.contains_key(crate::steps::EXISTING_ACCOUNT) {
            return Err(Error::EmailTaken);
        }
        let user_id: UserId = session.user_id.clone().ok_or_else(|| {
            Error::Configuration(auth_service::ConfigError::invalid(
                "onboarding pipeline",
                "finished without a user: start it with a register step",
            ))
        })?;
        // The service activates the account (created inactive by the register step, so that no
        // other way in works before the required steps are done) and signs it in.
        let login = self
            .inner
            .auth
            .complete_onboarding(&user_id, LoginOptions::new())
            .await?;
        session.completed = true;
        self.inner
            .auth
            .events()
            .emit(AuthEvent::OnboardingCompleted {
                user_id,
                session_id: session.id.clone(),
            })
            .await;
        Ok((OnboardingStatus::Completed, None, Some(login)))
    }

    /// Deletes expired sessions; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    pub async fn cleanup_expired(&self) -> Result<u64> {
        self.inner.store.cleanup_expired(self.now()).await
    }
}
