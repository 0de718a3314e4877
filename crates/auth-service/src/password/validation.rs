use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use super::BreachedPasswordValidator;
use crate::{FieldError, PasswordContext, PasswordValidator, Result, ValidationErrors};

/// The validators a new password must pass. The default is the reference's four: minimum
/// length 8, not a common password, not entirely numeric, not too similar to the email.
///
/// ```
/// use auth_service::{PasswordContext, PasswordPolicy};
///
/// let policy = PasswordPolicy::default();
/// let err = policy.validate("12345", &PasswordContext::new()).unwrap_err();
/// // Every failure at once: too short, too common, entirely numeric.
/// let auth_service::Error::Validation(errors) = err else { unreachable!() };
/// assert_eq!(errors.len(), 3);
/// assert!(policy.validate("violet-otter-sings-42", &PasswordContext::new()).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    validators: Vec<Arc<dyn PasswordValidator>>,
    breach: Option<BreachedPasswordValidator>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::empty()
            .with(MinimumLengthValidator::default())
            .with(CommonPasswordValidator::default())
            .with(NumericPasswordValidator)
            .with(UserAttributeSimilarityValidator::default())
    }
}

impl PasswordPolicy {
    /// A policy that accepts every password (up to the hashing length limit).
    ///
    /// ```
    /// # use auth_service::{PasswordContext, PasswordPolicy};
    /// assert!(PasswordPolicy::empty().validate("1", &PasswordContext::new()).is_ok());
    /// ```
    #[must_use]
    pub fn empty() -> Self {
        Self {
            validators: Vec::new(),
            breach: None,
        }
    }

    /// Also refuses passwords found in breaches (see [`BreachedPasswordValidator`]). The check
    /// asks a source, so it runs in [`check`](Self::check), not in the synchronous
    /// [`validate`](Self::validate), and only once the other rules pass (a password refused
    /// anyway costs no request).
    ///
    /// ```
    /// use auth_service::{BreachedPasswordValidator, PasswordPolicy, PwnedPasswordsDir};
    /// let policy = PasswordPolicy::default()
    ///     .with_breach_check(BreachedPasswordValidator::new(PwnedPasswordsDir::new("/var/lib/pwned")));
    /// assert!(policy.breach_check().is_some());
    /// assert_eq!(policy.help_texts().len(), 5);
    /// ```
    #[must_use]
    pub fn with_breach_check(mut self, validator: BreachedPasswordValidator) -> Self {
        self.breach = Some(validator);
        self
    }

    /// The breach check, if one is set.
    ///
    /// ```
    /// assert!(auth_service::PasswordPolicy::default().breach_check().is_none());
    /// ```
    #[must_use]
    pub fn breach_check(&self) -> Option<&BreachedPasswordValidator> {
        self.breach.as_ref()
    }

    /// Every rule, the breach check included: [`validate`](Self::validate), then, when it
    /// passes, the breach check. This is what `AuthService` runs.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Validation`] (a breached password has code `breached_password`); a
    /// breach source's [`crate::Error::Backend`] when its validator refuses on failure.
    ///
    /// ```
    /// # use auth_service::{PasswordContext, PasswordPolicy};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let policy = PasswordPolicy::default();
    /// assert!(policy.check("12345", &PasswordContext::new()).await.is_err());
    /// assert!(policy.check("violet-otter-sings-42", &PasswordContext::new()).await.is_ok());
    /// # });
    /// ```
    pub async fn check(&self, password: &str, ctx: &PasswordContext<'_>) -> Result<()> {
        self.validate(password, ctx)?;
        match &self.breach {
            Some(breach) => breach.check(password).await,
            None => Ok(()),
        }
    }

    /// Adds a validator.
    ///
    /// ```
    /// # use auth_service::{MinimumLengthValidator, PasswordPolicy};
    /// let p = PasswordPolicy::empty().with(MinimumLengthValidator::new(12));
    /// assert_eq!(p.help_texts().len(), 1);
    /// ```
    #[must_use]
    pub fn with(mut self, validator: impl PasswordValidator) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Runs every synchronous validator and reports every failure (the breach check, if set,
    /// runs only in [`check`](Self::check)).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Validation`] listing each failure (field `password`).
    ///
    /// ```
    /// # use auth_service::{PasswordContext, PasswordPolicy};
    /// let ctx = PasswordContext::new().with_email("jennifer@example.com");
    /// assert!(PasswordPolicy::default().validate("jennifer1", &ctx).is_err());
    /// ```
    pub fn validate(&self, password: &str, ctx: &PasswordContext<'_>) -> Result<()> {
        let mut errors = ValidationErrors::default();
        for v in &self.validators {
            if let Err(e) = v.validate(password, ctx) {
                errors.push(e);
            }
        }
        errors.into_result()
    }

    /// The help texts of every validator, in order.
    ///
    /// ```
    /// # use auth_service::PasswordPolicy;
    /// assert_eq!(PasswordPolicy::default().help_texts().len(), 4);
    /// ```
    #[must_use]
    pub fn help_texts(&self) -> Vec<String> {
        self.validators
            .iter()
            .map(|v| v.help_text())
            .chain(self.breach.iter().map(BreachedPasswordValidator::help_text))
            .collect()
    }
}

/// The password must have at least `min_length` characters (default 8).
///
/// ```
/// use auth_service::{MinimumLengthValidator, PasswordContext, PasswordValidator};
/// let v = MinimumLengthValidator::default();
/// assert!(v.validate("short", &PasswordContext::new()).is_err());
/// assert!(v.validate("long enough", &PasswordContext::new()).is_ok());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MinimumLengthValidator {
    min_length: usize,
}

impl MinimumLengthValidator {
    /// The default minimum, in characters.
    pub const DEFAULT: usize = 8;

    /// A validator with its own minimum.
    ///
    /// ```
    /// # use auth_service::{MinimumLengthValidator, PasswordContext, PasswordValidator};
    /// assert!(MinimumLengthValidator::new(3).validate("abc", &PasswordContext::new()).is_ok());
    /// ```
    #[must_use]
    pub fn new(min_length: usize) -> Self {
        Self { min_length }
    }
}

impl Default for MinimumLengthValidator {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

impl PasswordValidator for MinimumLengthValidator {
    fn validate(&self, password: &str, _ctx: &PasswordContext<'_>) -> Result<(), FieldError> {
        if password.chars().count() < self.min_length {
            return Err(FieldError::new(
                "password",
                "password_too_short",
                format!(
                    "This password is too short. It must contain at least {} characters.",
                    self.min_length
                ),
            ));
        }
        Ok(())
    }

    fn help_text(&self) -> String {
        format!(
            "Your password must contain at least {} characters.",
            self.min_length
        )
    }
}

static DJANGO_COMMON_PASSWORDS: LazyLock<Arc<HashSet<Box<str>>>> =
    LazyLock::new(|| Arc::new(parse_list(include_str!("../common-passwords.txt"))));

fn parse_list(text: &str) -> HashSet<Box<str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_lowercase().into_boxed_str())
        .collect()
}

/// The password must not be in a list of common passwords, compared case-insensitively.
///
/// The default list is Django's 20,000-line common-password list (19,729 distinct entries,
/// exactly the set Django checks against) (created by Royce Williams; see
/// `COMMON-PASSWORDS-LICENSE` in this crate). It is parsed once per process, on first use.
///
/// ```
/// use auth_service::{CommonPasswordValidator, PasswordContext, PasswordValidator};
/// let v = CommonPasswordValidator::default();
/// assert!(v.validate("Password", &PasswordContext::new()).is_err());
/// assert!(v.validate("quartz-lemur-orbit", &PasswordContext::new()).is_ok());
/// assert_eq!(v.len(), 19_729); // Django's 20,000 lines hold 19,729 distinct entries
///
/// let custom = CommonPasswordValidator::from_list("hunter2\nletmein\n");
/// assert!(custom.validate("HUNTER2", &PasswordContext::new()).is_err());
/// ```
#[derive(Clone)]
pub struct CommonPasswordValidator {
    passwords: Arc<HashSet<Box<str>>>,
}

impl CommonPasswordValidator {
    /// A validator with a custom list: one password per line.
    ///
    /// ```
    /// # use auth_service::CommonPasswordValidator;
    /// assert_eq!(CommonPasswordValidator::from_list("a\nb\n\nA\n").len(), 2);
    /// ```
    #[must_use]
    pub fn from_list(text: &str) -> Self {
        Self {
            passwords: Arc::new(parse_list(text)),
        }
    }

    /// How many distinct passwords are in the list.
    ///
    /// ```
    /// # use auth_service::CommonPasswordValidator;
    /// assert!(CommonPasswordValidator::default().len() > 19_000);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    /// Whether the list is empty.
    ///
    /// ```
    /// # use auth_service::CommonPasswordValidator;
    /// assert!(CommonPasswordValidator::from_list("").is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

impl Default for CommonPasswordValidator {
    fn default() -> Self {
        Self {
            passwords: Arc::clone(&DJANGO_COMMON_PASSWORDS),
        }
    }
}

impl fmt::Debug for CommonPasswordValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonPasswordValidator")
            .field("entries", &self.passwords.len())
            .finish()
    }
}

impl PasswordValidator for CommonPasswordValidator {
    fn validate(&self, password: &str, _ctx: &PasswordContext<'_>) -> Result<(), FieldError> {
        if self
            .passwords
            .contains(password.trim().to_lowercase().as_str())
        {
            return Err(FieldError::new(
                "password",
                "password_too_common",
                "This password is too common.",
            ));
        }
        Ok(())
    }

    fn help_text(&self) -> String {
        "Your password can't be a commonly used password.".to_owned()
    }
}

/// The password must not be entirely numeric (any Unicode digits).
///
/// ```
/// use auth_service::{NumericPasswordValidator, PasswordContext, PasswordValidator};
/// assert!(NumericPasswordValidator.validate("8675309123", &PasswordContext::new()).is_err());
/// assert!(NumericPasswordValidator.validate("8675309x", &PasswordContext::new()).is_ok());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericPasswordValidator;

impl PasswordValidator for NumericPasswordValidator {
    fn validate(&self, password: &str, _ctx: &PasswordContext<'_>) -> Result<(), FieldError> {
        if !password.is_empty() && password.chars().all(char::is_numeric) {
            return Err(FieldError::new(
                "password",
                "password_entirely_numeric",
                "This password is entirely numeric.",
            ));
        }
        Ok(())
    }

    fn help_text(&self) -> String {
        "Your password can't be entirely numeric.".to_owned()
    }
}

/// The password must not be too similar to the email, its local part, or the parts of either
/// split on non-word characters (Django's rule, at similarity 0.7 by default).
///
/// Similarity is `difflib.SequenceMatcher.quick_ratio()`, as Django computes it.
///
/// ```
/// use auth_service::{PasswordContext, PasswordValidator, UserAttributeSimilarityValidator};
/// let v = UserAttributeSimilarityValidator::default();
/// let ctx = PasswordContext::new().with_email("margaret.hamilton@nasa.gov");
/// assert!(v.validate("margaret1", &ctx).is_err());
/// assert!(v.validate("apollo-guidance-99", &ctx).is_ok());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct UserAttributeSimilarityValidator {
    max_similarity: f64,
}

impl UserAttributeSimilarityValidator {
    /// The default maximum similarity.
    pub const DEFAULT: f64 = 0.7;
    /// The lowest maximum accepted (as in Django, below it nearly everything is rejected).
    pub const MIN: f64 = 0.1;

    /// A validator with its own threshold, clamped to at least [`Self::MIN`].
    ///
    /// ```
    /// # use auth_service::{PasswordContext, PasswordValidator, UserAttributeSimilarityValidator};
    /// let strict = UserAttributeSimilarityValidator::new(0.5);
    /// assert!(strict.validate("margarine", &PasswordContext::new().with_email("margaret@x.io")).is_err());
    /// ```
    #[must_use]
    pub fn new(max_similarity: f64) -> Self {
        Self {
            max_similarity: max_similarity.max(Self::MIN),
        }
    }
}

impl Default for UserAttributeSimilarityValidator {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

impl PasswordValidator for UserAttributeSimilarityValidator {
    fn validate(&self, password: &str, ctx: &PasswordContext<'_>) -> Result<(), FieldError> {
        let Some(email) = ctx.email().filter(|e| !e.is_empty()) else {
            return Ok(());
        };
        let password: Vec<char> = password.to_lowercase().chars().collect();
        let email = email.to_lowercase();
        let mut candidates: Vec<&str> = email
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        candidates.push(&email);
        if let Some((local, _)) = email.split_once('@') {
            candidates.push(local);
        }
        for value in candidates.into_iter().filter(|v| !v.is_empty()) {
            let value: Vec<char> = value.chars().collect();
            if exceeds_maximum_length_ratio(password.len(), self.max_similarity, value.len()) {
                continue;
            }
            if quick_ratio(&password, &value) >= self.max_similarity {
                return Err(FieldError::new(
                    "password",
                    "password_too_similar",
                    "The password is too similar to the email.",
                ));
            }
        }
        Ok(())
    }

    fn help_text(&self) -> String {
        "Your password can't be too similar to your other personal information.".to_owned()
    }
}

/// Django's shortcut: a value far shorter than the password cannot reach the threshold.
#[allow(clippy::cast_precision_loss)]
fn exceeds_maximum_length_ratio(pwd_len: usize, max_similarity: f64, value_len: usize) -> bool {
    let length_bound_similarity = max_similarity / 2.0 * pwd_len as f64;
    pwd_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// `difflib.SequenceMatcher(a, b).quick_ratio()`: an upper bound on the similarity ratio,
/// from the multiset intersection of characters.
#[allow(clippy::cast_precision_loss)]
fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let mut avail: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for &c in b {
        *avail.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(n) = avail.get_mut(c).filter(|n| **n > 0) {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / total as f64
}
