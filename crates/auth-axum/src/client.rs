//! The client's address: the socket peer, or `X-Forwarded-For` behind trusted proxies only.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks). Without any, the
/// client address is the socket peer and the header is ignored: a client cannot choose its
/// own address (and so its own rate-limit bucket).
///
/// ```
/// use auth_axum::TrustedProxies;
/// let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
/// let mut h = axum::http::HeaderMap::new();
/// h.insert("x-forwarded-for", "203.0.113.7, 10.1.2.3".parse().unwrap());
/// // From a trusted proxy: the rightmost address that is not a proxy.
/// assert_eq!(proxies.client_ip(Some("10.9.9.9".parse().unwrap()), &h), Some("203.0.113.7".parse().unwrap()));
/// // From anyone else: the socket peer.
/// assert_eq!(proxies.client_ip(Some("198.51.100.1".parse().unwrap()), &h), Some("198.51.100.1".parse().unwrap()));
/// assert!(TrustedProxies::parse("not-an-ip").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<(IpAddr, u8)>,
}

fn prefix_match(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        (IpAddr::V4(_), IpAddr::V6(i)) => i
            .to_ipv4_mapped()
            .is_some_and(|v4| prefix_match(net, len, IpAddr::V4(v4))),
        (IpAddr::V6(_), IpAddr::V4(_)) => false,
    }
}

impl TrustedProxies {
    /// No trusted proxy.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// From a comma-separated list of addresses and CIDR blocks (`AUTH_TRUSTED_PROXIES`).
    ///
    /// # Errors
    ///
    /// The entry that is neither.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, len) = match entry.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (entry, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| entry.to_owned())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| entry.to_owned())?,
                None => max,
            };
            blocks.push((ip, len));
        }
        Ok(Self { blocks })
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks
            .iter()
            .any(|(net, len)| prefix_match(*net, *len, ip))
    }

    /// The client address of a request from `peer` with `headers`.
    #[must_use]
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.contains(peer) {
            return Some(peer);
        }
        // Walk X-Forwarded-For from the right, skipping our own proxies; the first other
        // address is the client. Malformed entries end the walk at the last trusted hop.
        let mut client = peer;
        let joined: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in joined.iter().rev().take(32) {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => client = ip,
                Ok(ip) => return Some(ip),
                Err(_) => return Some(client),
            }
        }
        Some(client)
    }

    /// The client address of a request (the peer comes from axum's `ConnectInfo`, present
    /// when the app is served with `into_make_service_with_connect_info::<SocketAddr>()`).
    #[must_use]
    pub fn from_parts(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        self.client_ip(peer, &parts.headers)
    }
}

impl TrustedProxies {
    /// The client metadata of a request: its address (through these proxies only) and user
    /// agent.
    ///
    /// ```
    /// let parts = axum::http::Request::builder().header("user-agent", "curl/8").body(()).unwrap().into_parts().0;
    /// let meta = auth_axum::TrustedProxies::none().meta(&parts);
    /// assert_eq!(meta.user_agent.as_deref(), Some("curl/8"));
    /// ```
    #[must_use]
    pub fn meta(&self, parts: &Parts) -> auth_service::SessionMeta {
        let mut meta = match parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            Some(ua) => auth_service::SessionMeta::new().with_user_agent(ua),
            None => auth_service::SessionMeta::new(),
        };
        meta.ip = self.from_parts(parts);
        meta
    }
}

/// Runs every request of `router` inside an [`auth_service::RequestContext`] with the client's
/// metadata, so events (and the audit log) know where they came from.
pub(crate) fn with_request_context(router: axum::Router, proxies: TrustedProxies) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (parts, body) = req.into_parts();
            let ctx = auth_service::RequestContext::new(proxies.meta(&parts));
            let req = axum::extract::Request::from_parts(parts, body);
            auth_service::RequestScope::scope(ctx, next.run(req))
        },
    ))
}
