//! Bearer tokens: 32 random bytes shown once, stored only as HMAC-SM3 under a per-install key.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Mac, SimpleHmac};
use sm3::Sm3;
use zeroize::{Zeroize, Zeroizing};

use super::IdentityError;

/// Prefix of every seald token, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "sld_";
const KEY_LEN: usize = 32;
const TOKEN_BYTES: usize = 32;

type HmacSm3 = SimpleHmac<Sm3>;

/// The per-install key that token hashes are made with. Kept in a 0600 file next to the store.
pub struct TokenKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Where the token key of the store at `store_path` lives: `<store>.token-key`.
pub fn key_path_for(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".token-key");
    PathBuf::from(name)
}

impl TokenKey {
    /// Reads the key at `path`, creating a new random one (mode 0600) if there is none.
    /// Refuses a key file that others can read.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        let io = |e| IdentityError::KeyFile {
            path: path.to_path_buf(),
            source: e,
        };
        match OpenOptions::new().read(true).open(path) {
            Ok(mut file) => {
                let mode = file.metadata().map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(IdentityError::KeyFileExposed {
                        path: path.to_path_buf(),
                        mode: mode & 0o777,
                    });
                }
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                let mut extra = [0u8; 1];
                file.read_exact(&mut key[..]).map_err(io)?;
                if file.read(&mut extra).map_err(io)? != 0 {
                    return Err(IdentityError::KeyFile {
                        path: path.to_path_buf(),
                        source: std::io::Error::other("the key file is longer than 32 bytes"),
                    });
                }
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                getrandom::fill(&mut key[..]).map_err(|e| IdentityError::Random(e.to_string()))?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                file.write_all(&key[..]).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key from bytes (tests).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// HMAC-SM3 of a token under this key: what the store keeps.
    pub fn hash(&self, token: &str) -> Vec<u8> {
        let mut mac = <HmacSm3 as Mac>::new_from_slice(&self.0[..]).expect("HMAC takes any key");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `token` hashes to `stored`, compared in constant time.
    pub fn matches(&self, token: &str, stored: &[u8]) -> bool {
        let mut mac = <HmacSm3 as Mac>::new_from_slice(&self.0[..]).expect("HMAC takes any key");
        mac.update(token.as_bytes());
        mac.verify_slice(stored).is_ok()
    }
}

/// A freshly issued bearer token. Show it once; seald keeps only its hash.
pub struct IssuedToken(Zeroizing<String>);

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedToken(..)")
    }
}

impl IssuedToken {
    /// A new random token: the prefix and 32 random bytes in hex.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| IdentityError::Random(e.to_string()))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        bytes.zeroize();
        Ok(Self(Zeroizing::new(token)))
    }

    /// The token text, to show to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_long() {
        let a = IssuedToken::generate().unwrap();
        let b = IssuedToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + 64);
    }

    #[test]
    fn hash_is_keyed() {
        let k1 = TokenKey::from_bytes([1; 32]);
        let k2 = TokenKey::from_bytes([2; 32]);
        assert_ne!(k1.hash("sld_x"), k2.hash("sld_x"));
        assert!(k1.matches("sld_x", &k1.hash("sld_x")));
        assert!(!k1.matches("sld_y", &k1.hash("sld_x")));
        assert_eq!(k1.hash("sld_x").len(), 32);
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = TokenKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(a.hash("t"), b.hash("t"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            TokenKey::load_or_create(&path),
            Err(IdentityError::KeyFileExposed { .. })
        ));
    }
}
