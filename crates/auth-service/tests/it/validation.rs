use auth_service::{
    CommonPasswordValidator, Error, MinimumLengthValidator, NumericPasswordValidator,
    PasswordContext, PasswordPolicy, PasswordValidator, UserAttributeSimilarityValidator,
};

fn ctx(email: &str) -> PasswordContext<'_> {
    PasswordContext::new().with_email(email)
}

#[test]
fn minimum_length_counts_characters() {
    let v = MinimumLengthValidator::default();
    assert!(v.validate("sevenc7", &PasswordContext::new()).is_err());
    assert!(v.validate("eightch8", &PasswordContext::new()).is_ok());
    // 8 characters, more bytes.
    assert!(v.validate("éééééééé", &PasswordContext::new()).is_ok());
    let e = v.validate("x", &PasswordContext::new()).unwrap_err();
    assert_eq!(
        e.message,
        "This password is too short. It must contain at least 8 characters."
    );
}

#[test]
fn common_list_is_djangos() {
    let v = CommonPasswordValidator::default();
    // Django's file has 20,000 lines and 19,729 distinct entries; Django checks the same set.
    assert_eq!(v.len(), 19_729);
    for common in ["password", "123456", "qwerty", "PassWord", " letmein "] {
        assert!(
            v.validate(common, &PasswordContext::new()).is_err(),
            "{common}"
        );
    }
    assert!(
        v.validate("violet-otter-sings-42", &PasswordContext::new())
            .is_ok()
    );
}

#[test]
fn numeric_includes_unicode_digits() {
    assert!(
        NumericPasswordValidator
            .validate("١٢٣٤٥٦٧٨", &PasswordContext::new())
            .is_err()
    );
    assert!(
        NumericPasswordValidator
            .validate("1234567a", &PasswordContext::new())
            .is_ok()
    );
}

#[test]
fn similarity_matches_djangos_quick_ratio() {
    let v = UserAttributeSimilarityValidator::default();
    // Full address, local part, and parts split on non-word characters.
    assert!(
        v.validate("john.smith@example.com", &ctx("john.smith@example.com"))
            .is_err()
    );
    assert!(
        v.validate("johnsmith", &ctx("john.smith@example.com"))
            .is_err()
    );
    assert!(
        v.validate("smith123", &ctx("john.smith@example.com"))
            .is_err()
    );
    assert!(
        v.validate("Example!", &ctx("john.smith@example.com"))
            .is_err()
    );
    assert!(
        v.validate("violet-otter-sings-42", &ctx("john.smith@example.com"))
            .is_ok()
    );
    // No email, nothing to compare.
    assert!(v.validate("john.smith", &PasswordContext::new()).is_ok());
    // A very long password is not compared with a tiny part (Django's length-ratio shortcut).
    assert!(
        v.validate("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &ctx("a@b.io"))
            .is_ok()
    );
}

#[test]
fn the_policy_reports_every_failure_with_help_texts() {
    let policy = PasswordPolicy::default();
    let err = policy
        .validate("1234567", &ctx("x@example.com"))
        .unwrap_err();
    let Error::Validation(errors) = err else {
        panic!()
    };
    assert_eq!(errors.len(), 3);
    assert!(errors.errors().iter().all(|e| e.field == "password"));
    assert_eq!(policy.help_texts().len(), 4);
    assert!(
        PasswordPolicy::empty()
            .validate("1", &PasswordContext::new())
            .is_ok()
    );
}
