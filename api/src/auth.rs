//! Bearer tokens: short-lived HS256 JWTs for people signed in (workspace, user, role,
//! session), and the [`Principal`] a verified credential establishes.

use std::fmt;
use std::path::Path;

use chrono::{Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cartie_domain::{Actor, PartnerId, UserId, WorkspaceId};

use crate::keyfile;
pub use crate::keyfile::KeyError;

const ISSUER: &str = "cartie";
/// Shortest signing secret accepted (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;
const SECRET_FILE: &str = "jwt_secret";
/// How long an access token lives; the refresh token renews it.
pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);

/// The role a credential acts with in its workspace. `Superadmin` is a platform
/// administrator looking into a workspace they are not a member of: read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Superadmin,
    /// A partner dealer acting through its API token: it sees only the published requests
    /// addressed to it and its own variants.
    Partner,
}

impl From<cartie_domain::member::Role> for Role {
    fn from(role: cartie_domain::member::Role) -> Self {
        use cartie_domain::member::Role as R;
        match role {
            R::Owner => Role::Owner,
            R::Admin => Role::Admin,
            R::Member => Role::Member,
        }
    }
}

impl Role {
    pub fn parse(value: &str) -> Option<Self> {
        cartie_domain::member::Role::parse(value).map(Role::from)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The workspace the token acts in.
    pub ws: Uuid,
    pub role: Role,
    /// The session the token belongs to (signing out ends it).
    pub sid: Uuid,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// What a credential speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A person signed in, in one session.
    User { user_id: UserId, session_id: Uuid },
    /// A bot or an integration with an API token.
    ApiToken(Uuid),
    /// A partner dealer with its API token.
    Partner {
        token_id: Uuid,
        partner_id: PartnerId,
    },
}

/// Who is calling, established from a credential checked against the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: WorkspaceId,
    pub subject: Subject,
    pub role: Role,
    /// An active owner or admin of the platform workspace.
    pub platform_admin: bool,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self.subject {
            Subject::User { user_id, .. } => Actor::User(user_id),
            Subject::ApiToken(id) | Subject::Partner { token_id: id, .. } => Actor::ApiToken(id),
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self.subject {
            Subject::User { user_id, .. } => Some(user_id),
            Subject::ApiToken(_) | Subject::Partner { .. } => None,
        }
    }

    /// The partner a partner's token acts for.
    pub fn partner_id(&self) -> Option<PartnerId> {
        match self.subject {
            Subject::Partner { partner_id, .. } => Some(partner_id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the member is disabled in this workspace or no longer belongs to it")]
    NoLongerMember,
    #[error("the partner this token acts for is deactivated")]
    PartnerInactive,
}

/// A verified access token, before the directory confirms it still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessToken {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub role: Role,
    pub session_id: Uuid,
}

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    /// The configured secret, or the one kept in the data directory (created on first use,
    /// readable only by its owner). A secret shorter than [`MIN_SECRET_BYTES`] is refused,
    /// since anyone could then forge tokens.
    pub fn load_or_generate(
        configured: Option<&SecretString>,
        data_dir: &Path,
    ) -> Result<Self, KeyError> {
        let (secret, origin) = keyfile::load_or_generate(
            configured,
            "CARTIE_JWT_SECRET",
            data_dir,
            SECRET_FILE,
            keyfile::random_hex_key,
        )?;
        let length = secret.expose_secret().len();
        if length < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort {
                origin,
                length,
                minimum: MIN_SECRET_BYTES,
            });
        }
        Ok(Self::new(&secret))
    }

    /// Signs an access token; answers it and when it expires.
    pub fn issue(
        &self,
        token: AccessToken,
        ttl: Duration,
    ) -> Result<(String, chrono::DateTime<Utc>), jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let expires = now + ttl;
        let claims = Claims {
            sub: token.user_id.0,
            ws: token.workspace_id.0,
            role: token.role,
            sid: token.session_id,
            iss: ISSUER.to_string(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
        };
        let jwt = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((jwt, expires))
    }

    pub fn verify(&self, token: &str) -> Result<AccessToken, AuthError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                }
            })?;
        Ok(AccessToken {
            workspace_id: WorkspaceId(data.claims.ws),
            user_id: UserId(data.claims.sub),
            role: data.claims.role,
            session_id: data.claims.sid,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` when there is no header.
pub fn bearer(header: Option<&str>) -> Result<Option<&str>, AuthError> {
    let Some(header) = header else {
        return Ok(None);
    };
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or(AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(&SecretString::from(secret.repeat(32)))
    }

    fn token(role: Role) -> AccessToken {
        AccessToken {
            workspace_id: WorkspaceId(Uuid::now_v7()),
            user_id: UserId(Uuid::now_v7()),
            role,
            session_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn an_empty_or_short_secret_is_refused_and_an_empty_setting_counts_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let short = SecretString::from("too-short".to_string());
        assert!(matches!(
            TokenKeys::load_or_generate(Some(&short), dir.path()),
            Err(KeyError::TooShort { length: 9, .. })
        ));
        // An empty CARTIE_JWT_SECRET= falls back to the generated key.
        let empty = SecretString::from(String::new());
        assert!(TokenKeys::load_or_generate(Some(&empty), dir.path()).is_ok());
        // A key file left empty is refused rather than used.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(SECRET_FILE), "  \n").unwrap();
        assert!(matches!(
            TokenKeys::load_or_generate(None, other.path()),
            Err(KeyError::TooShort { length: 0, .. })
        ));
    }

    #[test]
    fn an_issued_token_verifies_to_its_workspace_user_role_and_session() {
        let keys = keys("k1");
        let issued = token(Role::Admin);
        let (jwt, expires) = keys.issue(issued, Duration::minutes(15)).unwrap();
        assert!(expires > Utc::now());
        let header = format!("Bearer {jwt}");
        let found = bearer(Some(&header)).unwrap().unwrap();
        assert_eq!(keys.verify(found), Ok(issued));
    }

    #[test]
    fn tampered_foreign_expired_and_malformed_tokens_are_refused() {
        let keys = keys("k1");
        let (jwt, _) = keys.issue(token(Role::Member), Duration::hours(1)).unwrap();
        let mut tampered = jwt.clone();
        tampered.pop();
        tampered.push(if jwt.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.verify(&tampered), Err(AuthError::Invalid));
        let (foreign, _) = self::keys("k2")
            .issue(token(Role::Owner), Duration::hours(1))
            .unwrap();
        assert_eq!(keys.verify(&foreign), Err(AuthError::Invalid));
        let (expired, _) = keys
            .issue(token(Role::Member), Duration::hours(-2))
            .unwrap();
        assert_eq!(keys.verify(&expired), Err(AuthError::Expired));
        assert_eq!(bearer(None), Ok(None));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Malformed));
    }

    #[test]
    fn processes_generating_the_key_at_once_end_up_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<TokenKeys> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| TokenKeys::load_or_generate(None, dir.path()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (jwt, _) = keys[0]
            .issue(token(Role::Member), Duration::hours(1))
            .unwrap();
        assert!(keys.iter().all(|k| k.verify(&jwt).is_ok()));
    }

    #[test]
    fn a_generated_secret_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = TokenKeys::load_or_generate(None, dir.path()).unwrap();
        let second = TokenKeys::load_or_generate(None, dir.path()).unwrap();
        let (jwt, _) = first
            .issue(token(Role::Member), Duration::hours(1))
            .unwrap();
        assert!(second.verify(&jwt).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
