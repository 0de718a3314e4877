//! Providers: any OpenID Connect issuer (discovery), presets for Google, Microsoft and
//! GitLab, and GitHub's plain OAuth 2.0.

use std::fmt;

use auth_core::SecretString;

/// How a provider is spoken to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OpenID Connect: discovery at `{issuer}/.well-known/openid-configuration`, code flow with
    /// PKCE and nonce, the ID token checked (signature from the provider's keys, issuer,
    /// audience, expiry, nonce).
    Oidc {
        /// The issuer URL, exactly as the provider states it.
        issuer: String,
    },
    /// GitHub's OAuth 2.0: code flow with PKCE, then the user and their verified emails from
    /// the API.
    GitHub {
        /// Where the user is sent (`https://github.com/login/oauth/authorize`).
        authorize_url: String,
        /// Where the code is exchanged (`https://github.com/login/oauth/access_token`).
        token_url: String,
        /// The API (`https://api.github.com`).
        api_url: String,
    },
}

/// A configured provider: its name in routes (`/auth/oauth/{name}/start`) and identities,
/// how to speak to it, and the application's credentials there.
///
/// ```
/// use auth_oauth::Provider;
/// let google = Provider::google("client-id.apps.googleusercontent.com", "secret");
/// assert_eq!(google.name(), "google");
/// let corp = Provider::oidc("corp", "https://login.corp.example", "auth", Some("secret"));
/// assert_eq!(corp.scopes(), ["openid", "email", "profile"]);
/// ```
#[derive(Clone)]
pub struct Provider {
    name: String,
    protocol: Protocol,
    client_id: String,
    client_secret: Option<SecretString>,
    scopes: Vec<String>,
    /// Sign in with Apple: the client secret is a short JWT signed with the team's key.
    apple: Option<crate::apple::AppleKey>,
    form_post: bool,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Provider {
    /// Any OpenID Connect provider, by issuer URL (scopes `openid email profile`).
    ///
    /// ```
    /// let p = auth_oauth::Provider::oidc("okta", "https://dev-1.okta.com", "cid", Some("secret"));
    /// assert!(!format!("{p:?}").contains("secret\""));
    /// ```
    #[must_use]
    pub fn oidc(
        name: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Option<&str>,
    ) -> Self {
        Self {
            name: name.into(),
            protocol: Protocol::Oidc {
                issuer: issuer.into(),
            },
            client_id: client_id.into(),
            client_secret: client_secret.map(SecretString::from),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            apple: None,
            form_post: false,
        }
    }

    /// Sign in with Apple (`https://appleid.apple.com`): `client_id` is the Services ID; the
    /// client secret is a JWT (ES256, five minutes) signed with the key `key_id` of team
    /// `team_id` (`private_key_pem`: the `.p8` file), made for each code exchange. Apple
    /// answers with a form POST to the callback (`response_mode=form_post`), so the binding
    /// cookie is `SameSite=None; Secure`: serve the callback over HTTPS.
    ///
    /// # Errors
    ///
    /// [`auth_core::Error::Configuration`] for a key that is not a PKCS#8 P-256 private key.
    ///
    /// ```
    /// let pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----";
    /// assert!(auth_oauth::Provider::apple("com.example.web", "TEAM123456", "KEY1234567", pem).is_err());
    /// ```
    pub fn apple(
        client_id: impl Into<String>,
        team_id: &str,
        key_id: &str,
        private_key_pem: &str,
    ) -> auth_core::Result<Self> {
        let mut p = Self::oidc("apple", "https://appleid.apple.com", client_id, None)
            .with_scopes(["openid", "email"]);
        p.apple = Some(crate::apple::AppleKey::new(
            team_id,
            key_id,
            private_key_pem,
        )?);
        p.form_post = true;
        Ok(p)
    }

    /// Asks the provider to answer with a form POST (`response_mode=form_post`) instead of a
    /// redirect with a query.
    ///
    /// ```
    /// let p = auth_oauth::Provider::oidc("x", "https://x.example", "id", None).with_form_post();
    /// assert!(p.form_post());
    /// ```
    #[must_use]
    pub fn with_form_post(mut self) -> Self {
        self.form_post = true;
        self
    }

    /// Whether the provider answers with a form POST (cross-site: the binding cookie must be
    /// `SameSite=None`).
    ///
    /// ```
    /// assert!(!auth_oauth::Provider::google("id", "s").form_post());
    /// ```
    #[must_use]
    pub fn form_post(&self) -> bool {
        self.form_post
    }

    pub(crate) fn apple_key(&self) -> Option<&crate::apple::AppleKey> {
        self.apple.as_ref()
    }

    /// Google (`https://accounts.google.com`).
    ///
    /// ```
    /// assert_eq!(auth_oauth::Provider::google("id", "s").name(), "google");
    /// ```
    #[must_use]
    pub fn google(client_id: impl Into<String>, client_secret: &str) -> Self {
        Self::oidc(
            "google",
            "https://accounts.google.com",
            client_id,
            Some(client_secret),
        )
    }

    /// Microsoft Entra ID for one tenant (`https://login.microsoftonline.com/{tenant}/v2.0`;
    /// the multi-tenant `common` endpoint states a per-tenant issuer in its tokens, which
    /// strict issuer checks refuse: name the tenant).
    ///
    /// ```
    /// let p = auth_oauth::Provider::microsoft("id", "s", "contoso.onmicrosoft.com");
    /// assert_eq!(p.name(), "microsoft");
    /// ```
    #[must_use]
    pub fn microsoft(client_id: impl Into<String>, client_secret: &str, tenant: &str) -> Self {
        Self::oidc(
            "microsoft",
            format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            client_id,
            Some(client_secret),
        )
    }

    /// GitLab.com (`https://gitlab.com`; a self-managed GitLab is [`Provider::oidc`] with its
    /// URL).
    ///
    /// ```
    /// assert_eq!(auth_oauth::Provider::gitlab("id", "s").name(), "gitlab");
    /// ```
    #[must_use]
    pub fn gitlab(client_id: impl Into<String>, client_secret: &str) -> Self {
        Self::oidc(
            "gitlab",
            "https://gitlab.com",
            client_id,
            Some(client_secret),
        )
        .with_scopes(["openid", "email"])
    }

    /// GitHub (OAuth 2.0, scopes `read:user user:email`).
    ///
    /// ```
    /// assert_eq!(auth_oauth::Provider::github("id", "s").name(), "github");
    /// ```
    #[must_use]
    pub fn github(client_id: impl Into<String>, client_secret: &str) -> Self {
        Self::github_at(
            client_id,
            client_secret,
            "https://github.com",
            "https://api.github.com",
        )
    }

    /// GitHub at other addresses: GitHub Enterprise Server (`https://ghe.example`,
    /// `https://ghe.example/api/v3`), or a local stand-in in tests.
    ///
    /// ```
    /// let p = auth_oauth::Provider::github_at("id", "s", "https://ghe.example", "https://ghe.example/api/v3");
    /// assert_eq!(p.name(), "github");
    /// ```
    #[must_use]
    pub fn github_at(
        client_id: impl Into<String>,
        client_secret: &str,
        web_url: &str,
        api_url: &str,
    ) -> Self {
        let web = web_url.trim_end_matches('/');
        Self {
            name: "github".into(),
            protocol: Protocol::GitHub {
                authorize_url: format!("{web}/login/oauth/authorize"),
                token_url: format!("{web}/login/oauth/access_token"),
                api_url: api_url.trim_end_matches('/').into(),
            },
            client_id: client_id.into(),
            client_secret: Some(SecretString::from(client_secret)),
            scopes: vec!["read:user".into(), "user:email".into()],
            apple: None,
            form_post: false,
        }
    }

    /// Under another name (two tenants of one kind, say).
    ///
    /// ```
    /// assert_eq!(auth_oauth::Provider::github("id", "s").named("github-work").name(), "github-work");
    /// ```
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Other scopes (OpenID Connect keeps `openid`).
    ///
    /// ```
    /// let p = auth_oauth::Provider::oidc("x", "https://x.example", "id", None).with_scopes(["email"]);
    /// assert_eq!(p.scopes(), ["openid", "email"]);
    /// ```
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        let mut scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        if matches!(self.protocol, Protocol::Oidc { .. }) && !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        self.scopes = scopes;
        self
    }

    /// The name.
    ///
    /// ```
    /// assert_eq!(auth_oauth::Provider::gitlab("id", "s").name(), "gitlab");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The protocol.
    ///
    /// ```
    /// assert!(matches!(auth_oauth::Provider::github("i", "s").protocol(), auth_oauth::Protocol::GitHub { .. }));
    /// ```
    #[must_use]
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    /// The scopes asked for.
    ///
    /// ```
    /// assert_eq!(auth_oauth::Provider::github("i", "s").scopes(), ["read:user", "user:email"]);
    /// ```
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }
}
