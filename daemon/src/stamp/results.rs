//! The SES_Signatures of a signed request as the API shows them. They are kept in the store,
//! in the transaction that marks the request signed; stores from before schema 4 kept them in
//! one JSON file per request beside the store, which is still read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::approval::RequestId;
use crate::store::model::{Digest32, StoredSignature};

/// One signed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedResult {
    /// The document digest.
    pub digest: Digest32,
    /// The document's name.
    pub name: String,
    /// The SES_Signature, DER, base64.
    pub ses_signature: String,
}

impl From<StoredSignature> for SignedResult {
    fn from(s: StoredSignature) -> Self {
        use base64::Engine;
        Self {
            digest: s.digest,
            name: s.name,
            ses_signature: base64::engine::general_purpose::STANDARD.encode(&s.ses_signature),
        }
    }
}

/// Signatures that a store from before schema 4 kept in `<store>.signatures/<id>.json`.
#[derive(Debug, Clone)]
pub struct LegacyResults {
    dir: PathBuf,
}

impl LegacyResults {
    /// The legacy directory beside the store at `store_path` (it may not exist).
    pub fn beside(store_path: &Path) -> Self {
        let mut name = store_path.as_os_str().to_owned();
        name.push(".signatures");
        Self {
            dir: PathBuf::from(name),
        }
    }

    /// The results of request `id`, if an older seald kept them there.
    pub fn get(&self, id: RequestId) -> std::io::Result<Option<Vec<SignedResult>>> {
        match std::fs::read(self.dir.join(format!("{id}.json"))) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_files_are_read_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("seald.db");
        let legacy = LegacyResults::beside(&store);
        assert_eq!(legacy.get(1).unwrap(), None);
        let kept = vec![SignedResult {
            digest: Digest32([7; 32]),
            name: "a.pdf".into(),
            ses_signature: "MAo=".into(),
        }];
        std::fs::create_dir(dir.path().join("seald.db.signatures")).unwrap();
        std::fs::write(
            dir.path().join("seald.db.signatures/1.json"),
            serde_json::to_vec(&kept).unwrap(),
        )
        .unwrap();
        assert_eq!(legacy.get(1).unwrap(), Some(kept));
        assert_eq!(legacy.get(2).unwrap(), None);
    }
}
