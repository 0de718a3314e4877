//! The `auth_users` table as a sea-orm entity.

use sea_orm::entity::prelude::*;

/// One row of `auth_users`.
///
/// ```
/// use auth_users_db::entity::user;
/// use sea_orm::EntityName;
/// assert_eq!(user::Entity.table_name(), "auth_users");
/// ```
pub mod user {
    use super::*;

    /// A user row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_users")]
    pub struct Model {
        /// Identifier (becomes the token `sub`).
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Normalized email, unique.
        #[sea_orm(unique)]
        pub email: String,
        /// Encoded password hash.
        pub password_hash: Option<String>,
        /// May log in.
        pub is_active: bool,
        /// Email confirmed.
        pub is_verified: bool,
        /// Last successful login.
        pub last_login: Option<TimeDateTimeWithTimeZone>,
        /// When the account was created (the user's view).
        pub joined_at: Option<TimeDateTimeWithTimeZone>,
        /// Row creation.
        pub created_at: TimeDateTimeWithTimeZone,
        /// Last row update.
        pub updated_at: TimeDateTimeWithTimeZone,
        /// Profile fields (a JSON object), such as those onboarding collects.
        pub profile: Option<Json>,
    }

    /// No relations declared here: other crates' tables reference this one by name.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
