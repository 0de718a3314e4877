//! Social sign-in providers and the passkey relying party, from their variables.

use auth::{ConfigError, Error};

/// `scheme://host[:port]` of a URL (the URL itself when it has no path).
pub(crate) fn origin_of(url: &str) -> String {
    match url.find("://").map(|i| i + 3) {
        Some(start) => match url[start..].find('/') {
            Some(end) => url[..start + end].to_owned(),
            None => url.trim_end_matches('/').to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `AUTH_OAUTH_PROVIDERS` and each provider's `AUTH_OAUTH_<NAME>_*` variables.
pub(crate) fn oauth_providers(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<auth::oauth::Provider>, ConfigError> {
    let Some(list) = lookup("AUTH_OAUTH_PROVIDERS").filter(|s| !s.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut providers = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ConfigError::invalid(
                "AUTH_OAUTH_PROVIDERS",
                format!("{name:?}: provider names are lower-case letters, digits and '-'"),
            ));
        }
        let key = |suffix: &str| {
            format!(
                "AUTH_OAUTH_{}_{suffix}",
                name.to_uppercase().replace('-', "_")
            )
        };
        let var = |suffix: &str| lookup(&key(suffix)).filter(|s| !s.is_empty());
        let client_id = var("CLIENT_ID").ok_or_else(|| {
            ConfigError::invalid(
                key("CLIENT_ID"),
                "is required: the application's client id at the provider",
            )
        })?;
        let secret = var("CLIENT_SECRET");
        let needs_secret = |p: &str| {
            secret.clone().ok_or_else(|| {
                ConfigError::invalid(
                    "AUTH_OAUTH_PROVIDERS",
                    format!("{p} needs {}", key("CLIENT_SECRET")),
                )
            })
        };
        if name == "apple" {
            let pem = match (var("PRIVATE_KEY"), var("PRIVATE_KEY_FILE")) {
                (Some(pem), _) => pem,
                (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::invalid(
                        key("PRIVATE_KEY_FILE"),
                        format!("cannot read {path}: {e}"),
                    )
                })?,
                (None, None) => {
                    return Err(ConfigError::invalid(
                        key("PRIVATE_KEY_FILE"),
                        "is required for Sign in with Apple (or AUTH_OAUTH_APPLE_PRIVATE_KEY): the .p8 key file",
                    ));
                }
            };
            let need = |suffix: &str| {
                var(suffix).ok_or_else(|| {
                    ConfigError::invalid(key(suffix), "is required for Sign in with Apple")
                })
            };
            let apple =
                auth::oauth::Provider::apple(client_id, &need("TEAM_ID")?, &need("KEY_ID")?, &pem)
                    .map_err(|e| match e {
                        auth::Error::Configuration(c) => c,
                        other => ConfigError::invalid(key("PRIVATE_KEY"), other.to_string()),
                    })?;
            providers.push(apple);
            continue;
        }
        let provider = match (name, var("ISSUER")) {
            (_, Some(issuer)) => {
                auth::oauth::Provider::oidc(name, issuer, client_id, secret.as_deref())
            }
            ("google", None) => auth::oauth::Provider::google(client_id, &needs_secret(name)?),
            ("gitlab", None) => auth::oauth::Provider::gitlab(client_id, &needs_secret(name)?),
            ("microsoft", None) => {
                let tenant = var("TENANT").ok_or_else(|| {
                    ConfigError::invalid(
                        "AUTH_OAUTH_PROVIDERS",
                        "microsoft needs AUTH_OAUTH_MICROSOFT_TENANT (or AUTH_OAUTH_MICROSOFT_ISSUER)",
                    )
                })?;
                auth::oauth::Provider::microsoft(client_id, &needs_secret(name)?, &tenant)
            }
            ("github", None) => auth::oauth::Provider::github_at(
                client_id,
                &needs_secret(name)?,
                &var("URL").unwrap_or_else(|| "https://github.com".into()),
                &var("API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            ),
            (other, None) => {
                return Err(ConfigError::invalid(
                    "AUTH_OAUTH_PROVIDERS",
                    format!("{other} has no preset: set {}", key("ISSUER")),
                ));
            }
        };
        let provider = if matches!(var("FORM_POST").as_deref(), Some("true" | "1")) {
            provider.with_form_post()
        } else {
            provider
        };
        let provider = match var("SCOPES") {
            Some(scopes) => provider.with_scopes(
                scopes
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            None => provider,
        };
        providers.push(provider);
    }
    Ok(providers)
}

/// The passkeys' relying party: `rp_id` (else the public URL's host; `localhost` for a
/// loopback or unspecified address, since browsers refuse passkeys on IP addresses) and `origins` (else the
/// public URL's origin, with `localhost` in place of a loopback address).
pub(crate) fn relying_party(
    public_url: &str,
    rp_id: Option<String>,
    origins: Option<String>,
    name: &str,
) -> Result<auth::passkeys::WebauthnConfig, ConfigError> {
    let url = auth::passkeys::Url::parse(public_url)
        .map_err(|_| ConfigError::invalid("AUTH_PUBLIC_URL", "is not a URL"))?;
    let loopback = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback() || ip.is_unspecified());
    let host = if loopback {
        "localhost".to_owned()
    } else {
        url.host_str().unwrap_or("localhost").to_owned()
    };
    let default_origin = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let origins: Vec<String> = match origins {
        Some(list) => crate::settings::comma_list(&list),
        None => vec![default_origin],
    };
    let invalid = |e: Error| match e {
        Error::Configuration(c) => c,
        other => ConfigError::invalid("AUTH_WEBAUTHN_ORIGINS", other.to_string()),
    };
    let (first, rest) = origins
        .split_first()
        .ok_or_else(|| ConfigError::invalid("AUTH_WEBAUTHN_ORIGINS", "names no origin"))?;
    let mut config =
        auth::passkeys::WebauthnConfig::new(rp_id.unwrap_or(host), first).map_err(invalid)?;
    for origin in rest {
        config = config.with_origin(origin).map_err(invalid)?;
    }
    config.validate().map_err(invalid)?;
    Ok(config.rp_name(name))
}
