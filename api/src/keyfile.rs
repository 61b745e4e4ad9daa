//! Keys the platform generates for itself and keeps in the data directory (the token
//! signing key, the secret-sealing key) when they are not configured.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key from {origin} is {length} bytes; at least {minimum} are needed")]
    TooShort {
        origin: String,
        length: usize,
        minimum: usize,
    },
    #[error("the key from {origin} is not {expected}")]
    Malformed { origin: String, expected: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The configured key (an empty setting counts as unset), or the one kept in `file` in the
/// data directory, created on first use with `generate` and readable only by its owner.
/// Answers the key and where it came from. Processes generating it at once agree on one.
pub fn load_or_generate(
    configured: Option<&SecretString>,
    setting: &str,
    data_dir: &Path,
    file: &str,
    generate: impl FnOnce() -> String,
) -> Result<(SecretString, String), KeyError> {
    if let Some(secret) = configured.filter(|s| !s.expose_secret().is_empty()) {
        return Ok((secret.clone(), setting.to_string()));
    }
    let path = data_dir.join(file);
    let origin = path.display().to_string();
    let secret = match std::fs::read_to_string(&path) {
        Ok(existing) => existing.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let secret = generate();
            match write_private(&path, &secret) {
                Ok(()) => {
                    tracing::info!(path = %origin, "generated a key");
                    secret
                }
                // Another process (a server starting, a CLI command) wrote it first: use
                // theirs, so both use the same key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(&path)?.trim().to_string()
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok((SecretString::from(secret), origin))
}

/// 32 random bytes, hex-encoded.
pub fn random_hex_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
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
