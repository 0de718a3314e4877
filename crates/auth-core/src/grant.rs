//! Authority as a grant stored on the account: who holds which role, given by whom and when.
//! Nothing is ever inferred from an address; `AuthService::grant_role`
//! and `AuthService::revoke_role` are the only ways in and out.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::Result;
use crate::user::UserId;

/// The roles this workspace knows. `Owner` holds everything `Admin` does, and may also act on
/// other administrators (deactivate, reset, delete, revoke).
///
/// ```
/// use auth_core::Role;
/// assert_eq!(Role::Admin.as_str(), "admin");
/// assert_eq!(Role::parse("owner"), Some(Role::Owner));
/// assert!(Role::Owner.includes(Role::Admin) && !Role::Admin.includes(Role::Owner));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Administers accounts (`/admin`), and may give its own API keys the `admin` scope.
    Admin,
    /// An administrator who may also act on other administrators.
    Owner,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Self; 2] = [Self::Admin, Self::Owner];

    /// The stored name.
    ///
    /// ```
    /// assert_eq!(auth_core::Role::Owner.as_str(), "owner");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// The role stored as `name`, if it is one.
    ///
    /// ```
    /// assert_eq!(auth_core::Role::parse("root"), None);
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether holding `self` means holding `other` too.
    ///
    /// ```
    /// assert!(auth_core::Role::Admin.includes(auth_core::Role::Admin));
    /// ```
    #[must_use]
    pub fn includes(self, other: Self) -> bool {
        self == other || (self == Self::Owner && other == Self::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One grant: `user_id` holds `role` since `granted_at`, given by `granted_by` (`user:<id>`,
/// `api_key:<id>`, `operator` for the command line, `config` for an address listed in the
/// configuration and proven by its owner).
///
/// ```
/// use auth_service::{RoleGrant, Role, UserId};
/// let g = RoleGrant::new(UserId::new("1"), Role::Admin, "operator", time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(g.role, Role::Admin);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RoleGrant {
    /// Who holds it.
    pub user_id: UserId,
    /// What they hold.
    pub role: Role,
    /// Who gave it.
    pub granted_by: String,
    /// When.
    pub granted_at: OffsetDateTime,
}

impl RoleGrant {
    /// A grant.
    ///
    /// ```
    /// # use auth_service::*;
    /// let g = RoleGrant::new(UserId::new("1"), Role::Owner, "config", time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!(g.granted_by, "config");
    /// ```
    #[must_use]
    pub fn new(
        user_id: UserId,
        role: Role,
        granted_by: impl Into<String>,
        granted_at: OffsetDateTime,
    ) -> Self {
        Self {
            user_id,
            role,
            granted_by: granted_by.into(),
            granted_at,
        }
    }
}

/// What [`GrantStore::revoke_unless_last`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The grant is gone.
    Yes,
    /// The user did not hold the role.
    NotHeld,
    /// It was the last holder of the role: nothing changed.
    Last,
}

/// Where grants are kept. `auth_users_db::DbGrantStore` keeps them in SQL (`auth_grants`,
/// removed with the account); `MemoryGrantStore` in memory.
#[async_trait]
pub trait GrantStore: Send + Sync + 'static {
    /// The user's grants.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn grants_of(&self, user_id: &UserId) -> Result<Vec<RoleGrant>>;

    /// Stores `grant`; `false` when the user held the role already (nothing changed).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn grant(&self, grant: &RoleGrant) -> Result<bool>;

    /// Removes the user's `role`, unless nobody else holds it: atomically, so two holders
    /// revoking each other at once never leave the role without one.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn revoke_unless_last(&self, user_id: &UserId, role: Role) -> Result<Revoked>;

    /// Removes every grant of the user (the account's address was claimed by its owner, or
    /// the account is going); how many there were.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn revoke_all(&self, user_id: &UserId) -> Result<u64>;

    /// Who holds `role`, in id order.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn holders(&self, role: Role) -> Result<Vec<UserId>>;
}
