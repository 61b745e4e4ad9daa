//! Integration secrets sealed at rest: XChaCha20-Poly1305 with the platform's secret key
//! (`CARTIE_SECRET_KEY`, or generated and kept in the data directory). A sealed value is
//! bound to its workspace and name, so it cannot be moved to another slot and opened there.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};

use cartie_domain::workspace::{SealedSecret, SecretName};
use cartie_domain::WorkspaceId;

use crate::keyfile::{self, KeyError};

const KEY_FILE: &str = "secret_key";
/// Version prefix of sealed values, so the scheme can change later.
const SCHEME: &str = "v1:";
const NONCE_BYTES: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the sealed secret does not open with this key (wrong key, or moved from another workspace or name)")]
    WrongKey,
}

/// The key that seals and opens integration secrets.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A key of 32 bytes, written as 64 hex digits.
    pub fn from_hex(key: &SecretString, origin: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(key.expose_secret().trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| KeyError::Malformed {
                origin: origin.to_string(),
                expected: "64 hex digits (32 bytes)".to_string(),
            })?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key");
        Ok(Self { cipher })
    }

    pub fn load_or_generate(
        configured: Option<&SecretString>,
        data_dir: &Path,
    ) -> Result<Self, KeyError> {
        let (key, origin) = keyfile::load_or_generate(
            configured,
            "CARTIE_SECRET_KEY",
            data_dir,
            KEY_FILE,
            keyfile::random_hex_key,
        )?;
        Self::from_hex(&key, &origin)
    }

    fn associated_data(workspace: WorkspaceId, name: &SecretName) -> Vec<u8> {
        format!("cartie-secret:{workspace}:{}", name.as_str()).into_bytes()
    }

    pub fn seal(
        &self,
        workspace: WorkspaceId,
        name: &SecretName,
        value: &SecretString,
    ) -> SealedSecret {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut rand::rngs::OsRng);
        let aad = Self::associated_data(workspace, name);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory values");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        SealedSecret(format!("{SCHEME}{}", STANDARD.encode(sealed)))
    }

    pub fn open(
        &self,
        workspace: WorkspaceId,
        name: &SecretName,
        sealed: &SealedSecret,
    ) -> Result<SecretString, OpenError> {
        let encoded = sealed.0.strip_prefix(SCHEME).ok_or(OpenError::Malformed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_BYTES {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let aad = Self::associated_data(workspace, name);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::WrongKey)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| OpenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn key(hex_digit: char) -> SecretKey {
        SecretKey::from_hex(
            &SecretString::from(hex_digit.to_string().repeat(64)),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_in_its_slot_and_never_shows_the_value() {
        let ws = WorkspaceId(Uuid::now_v7());
        let name = SecretName::parse("name", "telegram_bot_token").unwrap();
        let value = SecretString::from("123456:ABC-very-secret".to_string());
        let sealed = key('a').seal(ws, &name, &value);
        assert!(!sealed.0.contains("very-secret"));
        assert_ne!(
            sealed,
            key('a').seal(ws, &name, &value),
            "a fresh nonce each time"
        );
        assert_eq!(
            key('a').open(ws, &name, &sealed).unwrap().expose_secret(),
            "123456:ABC-very-secret"
        );
        assert!(matches!(
            key('b').open(ws, &name, &sealed),
            Err(OpenError::WrongKey)
        ));
        let other_ws = WorkspaceId(Uuid::now_v7());
        assert!(matches!(
            key('a').open(other_ws, &name, &sealed),
            Err(OpenError::WrongKey)
        ));
        let other_name = SecretName::parse("name", "crm.api_key").unwrap();
        assert!(matches!(
            key('a').open(ws, &other_name, &sealed),
            Err(OpenError::WrongKey)
        ));
        assert!(matches!(
            key('a').open(ws, &name, &SealedSecret("garbage".into())),
            Err(OpenError::Malformed)
        ));
    }

    #[test]
    fn a_malformed_configured_key_is_refused_and_a_generated_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let bad = SecretString::from("not-hex".to_string());
        assert!(matches!(
            SecretKey::load_or_generate(Some(&bad), dir.path()),
            Err(KeyError::Malformed { .. })
        ));
        let first = SecretKey::load_or_generate(None, dir.path()).unwrap();
        let second = SecretKey::load_or_generate(None, dir.path()).unwrap();
        let ws = WorkspaceId(Uuid::now_v7());
        let name = SecretName::parse("name", "x").unwrap();
        let sealed = first.seal(ws, &name, &SecretString::from("v".to_string()));
        assert!(second.open(ws, &name, &sealed).is_ok());
    }
}
