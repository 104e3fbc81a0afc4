//! The SES_Signatures of signed requests, one 0600 JSON file per request beside the store,
//! written and synced before the request is marked signed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::approval::RequestId;
use crate::store::model::Digest32;

/// One signed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedResult {
    /// The document digest.
    pub digest: Digest32,
    /// The document's name.
    pub name: String,
    /// The SES_Signature, DER, base64.
    pub ses_signature: String,
}

/// Where results are kept.
#[derive(Debug, Clone)]
pub struct ResultStore {
    dir: PathBuf,
}

impl ResultStore {
    /// Results for the store at `store_path`, kept in `<store_path>.signatures/` (0700).
    pub fn open(store_path: &Path) -> std::io::Result<Self> {
        let mut name = store_path.as_os_str().to_owned();
        name.push(".signatures");
        let dir = PathBuf::from(name);
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir })
    }

    fn path(&self, id: RequestId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes and syncs the results of request `id`.
    pub fn put(&self, id: RequestId, results: &[SignedResult]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{id}.json.tmp"));
        let bytes = serde_json::to_vec(results).map_err(std::io::Error::other)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.path(id))?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    /// The results of request `id`, if it was signed.
    pub fn get(&self, id: RequestId) -> std::io::Result<Option<Vec<SignedResult>>> {
        match std::fs::read(self.path(id)) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the results of a request whose signing could not be recorded.
    pub fn discard(&self, id: RequestId) {
        let _ = std::fs::remove_file(self.path(id));
    }
}
