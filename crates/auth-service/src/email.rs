use crate::*;

/// The one canonical form of an email, used by the user store, the rate limiter and mail:
/// trimmed, Unicode NFC, the local part lower-cased, the domain through IDNA (UTS #46) to its
/// ASCII form. Two spellings of one address meet in one account and one limiter key; two
/// addresses that differ only by an accent (`gmail.com`, `gmäil.com` = `xn--gmil-moa.com`) stay
/// two, whatever the database's collation does. Rejects what cannot be an address.
///
/// # Errors
///
/// [`Error::Validation`] on field `email` when the value is empty, longer than
/// [`MAX_EMAIL_LEN`] (before or after conversion), has no single `@` with text on both sides,
/// contains whitespace or control characters, or has a domain IDNA refuses.
///
/// ```
/// use auth_service::normalize_email;
/// assert_eq!(normalize_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
/// // The same address, composed or decomposed, is one form.
/// assert_eq!(normalize_email("Jos\u{e9}@example.com").unwrap(), normalize_email("Jose\u{301}@example.com").unwrap());
/// // An accented domain is its own (punycode) domain, never the unaccented one.
/// assert_eq!(normalize_email("alice@GM\u{c4}IL.com").unwrap(), "alice@xn--gmil-moa.com");
/// assert!(normalize_email("not-an-email").is_err());
/// assert!(normalize_email("a@b@c").is_err());
/// ```
pub fn normalize_email(email: &str) -> Result<String> {
    use unicode_normalization::UnicodeNormalization;

    let invalid = || Error::invalid("email", "invalid_email", "Enter a valid email address.");
    let email = email.trim();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(invalid());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') {
        return Err(invalid());
    }
    let local: String = local.nfc().collect::<String>().to_lowercase();
    let domain = idna::domain_to_ascii(&domain.nfc().collect::<String>()).map_err(|_| invalid())?;
    if domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(invalid());
    }
    let canonical = format!("{local}@{domain}");
    if canonical.len() > MAX_EMAIL_LEN {
        return Err(invalid());
    }
    Ok(canonical)
}
