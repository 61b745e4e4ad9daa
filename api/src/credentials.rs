//! The credential store: password hashes (argon2id), hashes of API tokens, invitations and
//! refresh tokens, and sessions. None of it enters the event log; the log records only
//! that a credential was created, changed or revoked.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use cartie_domain::values::FieldError;
use cartie_store::{on_pool, on_tx, Database};

/// Kinds of credential kept per subject.
pub mod kinds {
    pub const PASSWORD: &str = "password";
    pub const API_TOKEN: &str = "api_token";
    pub const INVITATION: &str = "invitation";
}

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;
/// zxcvbn's score (0–4) a password must reach: 3 is "safely unguessable".
const MIN_PASSWORD_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Refuses a password an attacker could guess, saying why. `personal` holds what the
/// person's own details give away (e-mail, name).
pub fn check_password_strength(
    field: &str,
    password: &SecretString,
    personal: &[&str],
) -> Result<(), FieldError> {
    let password = password.expose_secret();
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, personal);
    if estimate.score() < MIN_PASSWORD_SCORE {
        let reason = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".to_string());
        let hint = estimate
            .feedback()
            .and_then(|f| f.suggestions().first().map(|s| format!(" {s}")))
            .unwrap_or_default();
        return Err(FieldError::new(
            field,
            format!("is too weak: {reason}.{hint}")
                .replace("..", ".")
                .trim()
                .to_string(),
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id (on a blocking thread: it is meant to be slow).
pub async fn hash_password(password: SecretString) -> Result<String, argon2::password_hash::Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .expect("password hashing does not panic")
}

/// Checks a password against a stored hash. Without a hash (unknown e-mail) it checks
/// against a fixed hash anyway, so both answers take the same time.
pub async fn verify_password(password: SecretString, stored: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| {
        DUMMY
            .get_or_init(|| {
                let salt = SaltString::generate(&mut OsRng);
                Argon2::default()
                    .hash_password(b"no account has this password", &salt)
                    .expect("hashing a constant")
                    .to_string()
            })
            .clone()
    });
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        matches && known
    })
    .await
    .unwrap_or(false)
}

/// A high-entropy secret handed out once (`<prefix>_<id>_<secret>`): the id finds the
/// stored hash, the secret proves possession. A SHA-256 hash suffices for 256 random bits.
#[derive(Clone)]
pub struct OpaqueToken {
    pub id: Uuid,
    secret: SecretString,
}

impl OpaqueToken {
    pub const API_TOKEN: &'static str = "cartie_at";
    pub const REFRESH: &'static str = "cartie_rt";
    pub const INVITATION: &'static str = "cartie_inv";

    pub fn generate(id: Uuid) -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self {
            id,
            secret: SecretString::from(URL_SAFE_NO_PAD.encode(bytes)),
        }
    }

    /// The token as the holder receives it.
    pub fn reveal(&self, prefix: &str) -> SecretString {
        SecretString::from(format!(
            "{prefix}_{}_{}",
            self.id.simple(),
            self.secret.expose_secret()
        ))
    }

    pub fn parse(prefix: &str, token: &str) -> Option<Self> {
        let rest = token.trim().strip_prefix(prefix)?.strip_prefix('_')?;
        let (id, secret) = (rest.get(..32)?, rest.get(32..)?.strip_prefix('_')?);
        let id = Uuid::try_parse(id).ok()?;
        (!secret.is_empty()).then(|| Self {
            id,
            secret: SecretString::from(secret.to_string()),
        })
    }

    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret.expose_secret().as_bytes()))
    }

    /// Whether this token's secret is the one `stored_hash` was made from.
    pub fn matches(&self, stored_hash: &str) -> bool {
        self.hash().as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

/// A stored credential.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credential {
    pub secret_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn get(
    db: &Database,
    subject: Uuid,
    kind: &str,
) -> Result<Option<Credential>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT secret_hash, expires_at, last_used_at FROM credentials WHERE subject_id = $1 AND kind = $2",
    )
    .bind(subject)
    .bind(kind)
    .fetch_optional(pool)
    .await)
}

/// Sets (or replaces) a subject's credential of one kind.
pub async fn put(
    db: &Database,
    subject: Uuid,
    kind: &str,
    secret_hash: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO credentials (subject_id, kind, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_id, kind) DO UPDATE SET \
             secret_hash = excluded.secret_hash, created_at = excluded.created_at, \
             expires_at = excluded.expires_at, last_used_at = NULL",
        )
        .bind(subject)
        .bind(kind)
        .bind(secret_hash)
        .bind(Utc::now())
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await
}

pub async fn delete(db: &Database, subject: Uuid, kind: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM credentials WHERE subject_id = $1 AND kind = $2")
            .bind(subject)
            .bind(kind)
            .execute(&mut *conn)
            .await?;
    });
    tx.commit().await
}

pub async fn touch(
    db: &Database,
    subject: Uuid,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("UPDATE credentials SET last_used_at = $3 WHERE subject_id = $1 AND kind = $2")
            .bind(subject)
            .bind(kind)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    });
    tx.commit().await
}

/// Last use of each of these subjects' credentials of one kind.
pub async fn last_used(
    db: &Database,
    subjects: &[Uuid],
    kind: &str,
) -> Result<Vec<(Uuid, Option<DateTime<Utc>>)>, sqlx::Error> {
    let mut found = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let used: Option<Option<DateTime<Utc>>> = on_pool!(db, pool => sqlx::query_scalar(
            "SELECT last_used_at FROM credentials WHERE subject_id = $1 AND kind = $2",
        )
        .bind(subject)
        .bind(kind)
        .fetch_optional(pool)
        .await)?;
        found.push((*subject, used.flatten()));
    }
    Ok(found)
}

/// A signed-in session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn session(db: &Database, id: Uuid) -> Result<Option<Session>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT session_id, user_id, workspace_id, revoked_at FROM sessions WHERE session_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)
}

/// Starts a session and answers its first refresh token.
pub async fn start_session(
    db: &Database,
    user: Uuid,
    workspace: Uuid,
    refresh_ttl: chrono::Duration,
) -> Result<(Uuid, OpaqueToken), sqlx::Error> {
    let session_id = Uuid::now_v7();
    let refresh = OpaqueToken::generate(Uuid::now_v7());
    let now = Utc::now();
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, workspace_id, created_at, refreshed_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(session_id)
        .bind(user)
        .bind(workspace)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_id, session_id, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(refresh.id)
        .bind(session_id)
        .bind(refresh.hash())
        .bind(now)
        .bind(now + refresh_ttl)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await?;
    Ok((session_id, refresh))
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    session_id: Uuid,
    secret_hash: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

/// What became of a presented refresh token.
pub enum Rotation {
    /// Used up; here is the session and its next refresh token.
    Rotated { session: Session, next: OpaqueToken },
    /// Unknown, expired, or its session ended.
    Refused,
    /// Presented a second time: someone holds a copy. The whole session is ended.
    Reused,
}

/// Uses a refresh token up (each works once) and issues the next one, in one transaction.
pub async fn rotate_refresh_token(
    db: &Database,
    presented: &OpaqueToken,
    refresh_ttl: chrono::Duration,
) -> Result<Rotation, sqlx::Error> {
    let now = Utc::now();
    let mut tx = db.begin_write().await?;
    let outcome = on_tx!(&mut tx, conn => {
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT session_id, secret_hash, expires_at, used_at FROM refresh_tokens WHERE token_id = $1",
        )
        .bind(presented.id)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(RefreshRow { session_id, secret_hash, expires_at, used_at })
                if presented.matches(&secret_hash) =>
            {
                let session: Session = sqlx::query_as(
                    "SELECT session_id, user_id, workspace_id, revoked_at FROM sessions WHERE session_id = $1",
                )
                .bind(session_id)
                .fetch_one(&mut *conn)
                .await?;
                if session.revoked_at.is_some() || expires_at <= now {
                    Rotation::Refused
                } else {
                    // Marks it used only if nobody did in between.
                    let claimed = sqlx::query(
                        "UPDATE refresh_tokens SET used_at = $2 WHERE token_id = $1 AND used_at IS NULL",
                    )
                    .bind(presented.id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if used_at.is_some() || claimed == 0 {
                        sqlx::query(
                            "UPDATE sessions SET revoked_at = $2, revoked_why = $3 WHERE session_id = $1",
                        )
                        .bind(session_id)
                        .bind(now)
                        .bind("refresh token used twice")
                        .execute(&mut *conn)
                        .await?;
                        Rotation::Reused
                    } else {
                        let next = OpaqueToken::generate(Uuid::now_v7());
                        sqlx::query(
                            "INSERT INTO refresh_tokens (token_id, session_id, secret_hash, created_at, expires_at) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(next.id)
                        .bind(session_id)
                        .bind(next.hash())
                        .bind(now)
                        .bind(now + refresh_ttl)
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query("UPDATE sessions SET refreshed_at = $2 WHERE session_id = $1")
                            .bind(session_id)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                        Rotation::Rotated { session, next }
                    }
                }
            }
            _ => Rotation::Refused,
        }
    });
    tx.commit().await?;
    Ok(outcome)
}

/// Ends sessions: one (`Some`), or every session of the user but `keep`.
pub async fn revoke_sessions(
    db: &Database,
    user: Uuid,
    only: Option<Uuid>,
    keep: Option<Uuid>,
    why: &str,
) -> Result<u64, sqlx::Error> {
    let now = Utc::now();
    let mut tx = db.begin_write().await?;
    let revoked = on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_why = $3 WHERE user_id = $1 \
             AND revoked_at IS NULL AND ($4 IS NULL OR session_id = $4) \
             AND ($5 IS NULL OR session_id <> $5)",
        )
        .bind(user)
        .bind(now)
        .bind(why)
        .bind(only)
        .bind(keep)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    tx.commit().await?;
    Ok(revoked)
}

/// The session a refresh token belongs to, if the token is genuine (used or not).
pub async fn session_of_refresh_token(
    db: &Database,
    presented: &OpaqueToken,
) -> Result<Option<Session>, sqlx::Error> {
    let row: Option<(Uuid, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT session_id, secret_hash FROM refresh_tokens WHERE token_id = $1",
    )
    .bind(presented.id)
    .fetch_optional(pool)
    .await)?;
    match row {
        Some((session_id, hash)) if presented.matches(&hash) => session(db, session_id).await,
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_string())
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let short = check_password_strength("password", &secret("abc123"), &[]).unwrap_err();
        assert!(short.message.contains("at least 10"), "{short}");
        let common = check_password_strength("password", &secret("password123"), &[]).unwrap_err();
        assert!(common.message.starts_with("is too weak"), "{common}");
        let personal = check_password_strength(
            "password",
            &secret("olenamotors"),
            &["olena@motors.example", "olena", "motors"],
        )
        .unwrap_err();
        assert!(personal.message.starts_with("is too weak"), "{personal}");
        assert!(
            check_password_strength("password", &secret("violet-anchor-tundra-91"), &[]).is_ok()
        );
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password(secret("violet-anchor-tundra-91"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(secret("violet-anchor-tundra-91"), Some(hash.clone())).await);
        assert!(!verify_password(secret("violet-anchor-tundra-92"), Some(hash)).await);
        assert!(!verify_password(secret("violet-anchor-tundra-91"), None).await);
    }

    #[test]
    fn opaque_tokens_round_trip_and_match_only_their_hash() {
        let token = OpaqueToken::generate(Uuid::now_v7());
        let shown = token.reveal(OpaqueToken::API_TOKEN);
        let parsed = OpaqueToken::parse(OpaqueToken::API_TOKEN, shown.expose_secret()).unwrap();
        assert_eq!(parsed.id, token.id);
        assert!(parsed.matches(&token.hash()));
        assert!(!OpaqueToken::generate(token.id).matches(&token.hash()));
        assert!(OpaqueToken::parse(OpaqueToken::REFRESH, shown.expose_secret()).is_none());
        assert!(OpaqueToken::parse(OpaqueToken::API_TOKEN, "cartie_at_nothex_x").is_none());
    }
}
