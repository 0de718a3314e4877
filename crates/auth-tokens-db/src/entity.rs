//! The token tables as sea-orm entities.

/// `auth_token_families`: one row per login session (a refresh family).
///
/// ```
/// use sea_orm::EntityName;
/// assert_eq!(auth_tokens_db::entity::family::Entity.table_name(), "auth_token_families");
/// ```
pub mod family {
    use sea_orm::entity::prelude::*;

    /// A session.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_token_families")]
    pub struct Model {
        /// Session id (random, 128 bits).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The user (`auth_users.id`).
        pub user_id: i64,
        /// Login time.
        pub created_at: TimeDateTimeWithTimeZone,
        /// The session never lives past this.
        pub absolute_expires_at: TimeDateTimeWithTimeZone,
        /// Expiry of the current refresh token.
        pub refresh_expires_at: TimeDateTimeWithTimeZone,
        /// Last issue or rotation.
        pub last_used_at: Option<TimeDateTimeWithTimeZone>,
        /// Client IP of the last use.
        pub ip: Option<String>,
        /// Client user agent of the last use.
        pub user_agent: Option<String>,
        /// Extra claims given at login.
        pub extra: Option<Json>,
        /// Set when the session ended.
        pub revoked_at: Option<TimeDateTimeWithTimeZone>,
    }

    /// Relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The session's tokens.
        #[sea_orm(has_many = "super::token::Entity")]
        Token,
    }

    impl Related<super::token::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Token.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// `auth_tokens`: access and refresh tokens, stored only as SHA-256.
///
/// ```
/// use sea_orm::EntityName;
/// assert_eq!(auth_tokens_db::entity::token::Entity.table_name(), "auth_tokens");
/// ```
pub mod token {
    use sea_orm::entity::prelude::*;

    /// A token.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_tokens")]
    pub struct Model {
        /// SHA-256 of the token, hex.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        /// `access` or `refresh`.
        pub kind: String,
        /// Token id.
        #[sea_orm(unique)]
        pub jti: String,
        /// The session.
        pub family_id: String,
        /// The user (`auth_users.id`).
        pub user_id: i64,
        /// Issue time.
        pub created_at: TimeDateTimeWithTimeZone,
        /// Expiry.
        pub expires_at: TimeDateTimeWithTimeZone,
        /// Set when revoked.
        pub revoked_at: Option<TimeDateTimeWithTimeZone>,
        /// Set when a refresh token was rotated (presenting it again is reuse).
        pub consumed_at: Option<TimeDateTimeWithTimeZone>,
        /// On a refresh token: the hash of the access token issued with it.
        pub paired_access_hash: Option<String>,
    }

    /// Relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The token's session.
        #[sea_orm(
            belongs_to = "super::family::Entity",
            from = "Column::FamilyId",
            to = "super::family::Column::Id"
        )]
        Family,
    }

    impl Related<super::family::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Family.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}
