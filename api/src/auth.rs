//! Bearer tokens: HS256 JWTs carrying workspace, user and role.

use std::fmt;
use std::path::Path;

use chrono::{Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cartie_domain::{Actor, UserId, WorkspaceId};

const ISSUER: &str = "cartie";
/// Shortest signing secret accepted (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the token signing secret from {origin} is {length} bytes; at least {MIN_SECRET_BYTES} are needed")]
    TooShort { origin: String, length: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
const SECRET_FILE: &str = "jwt_secret";

/// A member's role in a workspace. Roles gate only administration; every member uses
/// every module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Superadmin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The workspace the token acts in.
    pub ws: Uuid,
    pub role: Role,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// Who is calling, established from a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub role: Role,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor::User(self.user_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (send Authorization: Bearer <token>)")]
    Missing,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// Signs and verifies tokens.
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
    /// readable only by its owner). An empty setting counts as unset; a secret shorter than
    /// [`MIN_SECRET_BYTES`] is refused, since anyone could then forge tokens.
    pub fn load_or_generate(
        configured: Option<&SecretString>,
        data_dir: &Path,
    ) -> Result<Self, KeyError> {
        if let Some(secret) = configured.filter(|s| !s.expose_secret().is_empty()) {
            return Self::checked(secret, "CARTIE_JWT_SECRET");
        }
        let path = data_dir.join(SECRET_FILE);
        let secret = match std::fs::read_to_string(&path) {
            Ok(existing) => existing.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                let secret = hex::encode(bytes);
                match write_private(&path, &secret) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "generated a token signing key");
                        secret
                    }
                    // Another process (a server starting, `cartie token issue`) wrote it
                    // first: use theirs, so both sign with the same key.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read_to_string(&path)?.trim().to_string()
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        Self::checked(&SecretString::from(secret), &path.display().to_string())
    }

    fn checked(secret: &SecretString, origin: &str) -> Result<Self, KeyError> {
        let length = secret.expose_secret().len();
        if length < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort {
                origin: origin.to_string(),
                length,
            });
        }
        Ok(Self::new(secret))
    }

    pub fn issue(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let claims = Claims {
            sub: user.0,
            ws: workspace.0,
            role,
            iss: ISSUER.to_string(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                }
            })?;
        Ok(Principal {
            workspace_id: WorkspaceId(data.claims.ws),
            user_id: UserId(data.claims.sub),
            role: data.claims.role,
        })
    }

    /// Verifies the value of an `Authorization` header.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Malformed)?;
        self.verify(token)
    }
}

/// Writes the file whole or not at all (a temporary file renamed into place), readable only
/// by its owner, so a crash never leaves an empty key behind.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(&SecretString::from(secret.repeat(32)))
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
    fn an_issued_token_verifies_to_its_workspace_user_and_role() {
        let keys = keys("k1");
        let (ws, user) = (WorkspaceId(Uuid::now_v7()), UserId(Uuid::now_v7()));
        let token = keys
            .issue(ws, user, Role::Admin, Duration::hours(1))
            .unwrap();
        let principal = keys.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(
            principal,
            Principal {
                workspace_id: ws,
                user_id: user,
                role: Role::Admin
            }
        );
    }

    #[test]
    fn tampered_foreign_expired_and_missing_tokens_are_refused() {
        let keys = keys("k1");
        let ws = WorkspaceId(Uuid::now_v7());
        let user = UserId(Uuid::now_v7());
        let token = keys
            .issue(ws, user, Role::Member, Duration::hours(1))
            .unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.verify(&tampered), Err(AuthError::Invalid));
        let foreign = self::keys("k2")
            .issue(ws, user, Role::Owner, Duration::hours(1))
            .unwrap();
        assert_eq!(keys.verify(&foreign), Err(AuthError::Invalid));
        let expired = keys
            .issue(ws, user, Role::Member, Duration::hours(-2))
            .unwrap();
        assert_eq!(keys.verify(&expired), Err(AuthError::Expired));
        assert_eq!(keys.authenticate(None), Err(AuthError::Missing));
        assert_eq!(
            keys.authenticate(Some("Basic abc")),
            Err(AuthError::Malformed)
        );
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
        let token = keys[0]
            .issue(
                WorkspaceId(Uuid::nil()),
                UserId(Uuid::nil()),
                Role::Member,
                Duration::hours(1),
            )
            .unwrap();
        assert!(keys.iter().all(|k| k.verify(&token).is_ok()));
    }

    #[test]
    fn a_generated_secret_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = TokenKeys::load_or_generate(None, dir.path()).unwrap();
        let second = TokenKeys::load_or_generate(None, dir.path()).unwrap();
        let token = first
            .issue(
                WorkspaceId(Uuid::nil()),
                UserId(Uuid::nil()),
                Role::Member,
                Duration::hours(1),
            )
            .unwrap();
        assert!(second.verify(&token).is_ok());
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
