use std::fmt;

use crate::error::FieldError;

/// What a validator may compare the password with.
///
/// ```
/// use auth_core::PasswordContext;
/// let ctx = PasswordContext::new().with_email("alice@example.com");
/// assert_eq!(ctx.email(), Some("alice@example.com"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    email: Option<&'a str>,
}

impl<'a> PasswordContext<'a> {
    /// A context with nothing known about the user.
    ///
    /// ```
    /// # use auth_core::PasswordContext;
    /// assert!(PasswordContext::new().email().is_none());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the user's email.
    ///
    /// ```
    /// # use auth_core::PasswordContext;
    /// assert!(PasswordContext::new().with_email("a@b.c").email().is_some());
    /// ```
    #[must_use]
    pub fn with_email(mut self, email: &'a str) -> Self {
        self.email = Some(email);
        self
    }

    /// The user's email, if known.
    ///
    /// ```
    /// # use auth_core::PasswordContext;
    /// assert_eq!(PasswordContext::new().with_email("x@y.z").email(), Some("x@y.z"));
    /// ```
    #[must_use]
    pub fn email(&self) -> Option<&'a str> {
        self.email
    }
}

/// One rule a new password must follow, in the manner of Django's password validators.
///
/// ```
/// use auth_service::{FieldError, PasswordContext, PasswordPolicy, PasswordValidator};
///
/// #[derive(Debug)]
/// struct NoSpaces;
///
/// impl PasswordValidator for NoSpaces {
///     fn validate(&self, password: &str, _ctx: &PasswordContext<'_>) -> Result<(), FieldError> {
///         if password.contains(' ') {
///             return Err(FieldError::new("password", "password_has_space", "No spaces, please."));
///         }
///         Ok(())
///     }
///     fn help_text(&self) -> String { "Your password can't contain spaces.".into() }
/// }
///
/// let policy = PasswordPolicy::default().with(NoSpaces);
/// assert!(policy.validate("a long unusual phrase", &PasswordContext::new()).is_err());
/// ```
pub trait PasswordValidator: Send + Sync + fmt::Debug + 'static {
    /// Checks one password. The error's field is `password`.
    ///
    /// # Errors
    ///
    /// A [`FieldError`](crate::FieldError) with a stable code and a message for the user.
    fn validate(&self, password: &str, ctx: &PasswordContext<'_>) -> Result<(), FieldError>;

    /// A sentence describing the rule, for forms.
    fn help_text(&self) -> String;
}
