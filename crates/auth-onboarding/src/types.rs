//! What the engine answers: status, client hints, field errors, typed failures.

use serde::Serialize;
use serde_json::{Map, Value};

/// Where a flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnboardingStatus {
    /// A step is waiting for input.
    InProgress,
    /// Every step is done; tokens were issued.
    Completed,
}

/// One input a step wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldHint {
    /// The key to send in `advance` data.
    pub name: String,
    /// `email`, `password`, `text`, `code` or `checkbox`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it must be present.
    pub required: bool,
    /// A label for people.
    pub label: String,
}

impl FieldHint {
    /// A field.
    ///
    /// ```
    /// let f = auth_onboarding::FieldHint::new("code", "code", true, "Code from the email");
    /// assert_eq!(serde_json::to_value(&f).unwrap()["type"], "code");
    /// ```
    #[must_use]
    pub fn new(name: &str, kind: &str, required: bool, label: &str) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            required,
            label: label.into(),
        }
    }
}

/// Everything a client needs to render the current step, and nothing step-specific in the
/// client: name, title, description, whether it can be skipped, its fields, extra data (a
/// TOTP URI and QR code, a resend countdown). Debug output names the extra keys only: their
/// values can be secrets (a TOTP secret).
#[derive(Clone, PartialEq, Serialize)]
pub struct ClientHint {
    /// The step's name.
    pub step: String,
    /// A title for people.
    pub title: String,
    /// What to do.
    pub description: String,
    /// Whether `skip: true` is accepted.
    pub skippable: bool,
    /// The inputs.
    pub fields: Vec<FieldHint>,
    /// Step-specific data to show.
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for ClientHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHint")
            .field("step", &self.step)
            .field("title", &self.title)
            .field("skippable", &self.skippable)
            .field("fields", &self.fields)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ClientHint {
    /// A hint with no fields.
    ///
    /// ```
    /// let h = auth_onboarding::ClientHint::new("terms", "Terms", "Accept the terms");
    /// assert!(!h.skippable && h.fields.is_empty());
    /// ```
    #[must_use]
    pub fn new(step: &str, title: &str, description: &str) -> Self {
        Self {
            step: step.into(),
            title: title.into(),
            description: description.into(),
            skippable: false,
            fields: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Adds a field.
    #[must_use]
    pub fn field(mut self, name: &str, kind: &str, required: bool, label: &str) -> Self {
        self.fields
            .push(FieldHint::new(name, kind, required, label));
        self
    }

    /// Adds extra data.
    #[must_use]
    pub fn extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// What a step says about submitted data.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// Done: the flow moves on.
    Complete,
    /// Accepted, but the step has another phase (a code was sent): stay on it.
    Stay,
    /// Refused: errors per field; the flow stays.
    Invalid(Vec<(String, String)>),
}

impl StepOutcome {
    /// One field error.
    ///
    /// ```
    /// let o = auth_onboarding::StepOutcome::invalid("code", "wrong code");
    /// assert!(matches!(o, auth_onboarding::StepOutcome::Invalid(ref e) if e.len() == 1));
    /// ```
    #[must_use]
    pub fn invalid(field: &str, message: &str) -> Self {
        Self::Invalid(vec![(field.into(), message.into())])
    }
}

/// Why the engine refused a session token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingError {
    /// Unknown or invalidated session (HTTP 404).
    #[error("onboarding session not found")]
    Invalid,
    /// The session's time ran out (HTTP 410).
    #[error("onboarding session expired")]
    Expired,
    /// The flow already finished (HTTP 409).
    #[error("onboarding already completed")]
    Completed,
    /// Another request changed the session first; retry (HTTP 409).
    #[error("the session changed concurrently; retry")]
    Conflict,
    /// The flow cannot run as configured (nothing delivers verification codes, an unknown
    /// step...); the message says what to fix.
    #[error(transparent)]
    Auth(#[from] auth_service::Error),
}

/// The answer to `start`, `advance` and `resume`. Debug output hides the output's values
/// (recovery codes) and the tokens.
#[derive(Clone)]
pub struct OnboardingResult<U> {
    /// The session token (only from `start`: the engine stores it hashed).
    pub session_token: Option<auth_service::SecretString>,
    /// Where the flow stands.
    pub status: OnboardingStatus,
    /// The current step (`None` once completed).
    pub current_step: Option<String>,
    /// How to render it.
    pub client_hint: Option<ClientHint>,
    /// Errors per field from the last submission.
    pub errors: Vec<(String, String)>,
    /// Data a completed step hands the client once (recovery codes).
    pub output: Map<String, Value>,
    /// The login, on completion.
    pub auth: Option<auth_service::AuthResult<U>>,
}

impl<U: std::fmt::Debug> std::fmt::Debug for OnboardingResult<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnboardingResult")
            .field("status", &self.status)
            .field("current_step", &self.current_step)
            .field("client_hint", &self.client_hint)
            .field("errors", &self.errors)
            .field("output_keys", &self.output.keys().collect::<Vec<_>>())
            .field("logged_in", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}
