//! Errors of this crate.

/// Hasher parameters that cannot be used.
///
/// ```
/// let err = auth_hash::Argon2Params::new(8, 2, 1).unwrap_err();
/// assert!(err.to_string().contains("memory"));
/// let core: auth_core::Error = err.into();
/// assert!(matches!(core, auth_core::Error::Configuration(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// A parameter is outside its allowed range.
    #[error("{name} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// Which parameter.
        name: &'static str,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
        /// What was given.
        value: u64,
    },
}

impl From<ParamsError> for auth_core::Error {
    fn from(err: ParamsError) -> Self {
        auth_core::Error::Configuration(auth_core::ConfigError::invalid(
            "password hasher parameters",
            err.to_string(),
        ))
    }
}

pub(crate) fn check_range(
    name: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), ParamsError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ParamsError::OutOfRange {
            name,
            min,
            max,
            value,
        })
    }
}
