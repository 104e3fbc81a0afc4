//! Signing a request's documents in a pipeline: one thread more than the seal's token has free
//! sessions, so the daemon builds, verifies and encodes one signature while the device makes the
//! next, and a cipher machine signs on all its free sessions at once. Requests signing on the
//! same token meanwhile get fewer threads (at least two): more would only queue for sessions.
//! Every signature is still verified before it is kept, and the first failure stops the batch:
//! nothing of it is kept.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use time::OffsetDateTime;

use crate::approval::{RequestId, SignedDocument};
use crate::ses::{BuildError, DocumentSigner};
use crate::store::model::StampDocument;

/// More threads than this gain nothing on the machines seald runs on.
const MAX_THREADS: usize = 16;

/// Signs every document of request `id` with `signer`, using up to `free_sessions + 1`
/// threads (two at least); the signatures come back in document order.
pub fn sign_documents(
    signer: &DocumentSigner<'_>,
    id: RequestId,
    documents: &[StampDocument],
    time_info: OffsetDateTime,
    free_sessions: usize,
) -> Result<Vec<SignedDocument>, BuildError> {
    pipeline(documents.len(), free_sessions, |i| {
        let doc = &documents[i];
        let property_info = format!("seald:request/{id}/document/{}", i + 1);
        let built = signer.sign(time_info, &doc.digest.0, &property_info, None)?;
        Ok(SignedDocument {
            digest: doc.digest,
            ses_signature: built.der,
        })
    })
}

/// Runs `one(i)` for every `i` in `0..count` on up to `free_sessions + 1` threads (two at
/// least, one for a single item); the results come back in order. The first failure stops
/// the others taking new items, and the first error in item order is the answer.
pub fn pipeline<T, E, F>(count: usize, free_sessions: usize, one: F) -> Result<Vec<T>, E>
where
    T: Send,
    E: Send,
    F: Fn(usize) -> Result<T, E> + Sync,
{
    let threads = (free_sessions.max(1) + 1).min(count).min(MAX_THREADS);
    if threads <= 1 {
        return (0..count).map(one).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            let result = one(i);
            failed.fetch_or(result.is_err(), Ordering::Relaxed);
            done.push((i, result));
        }
        done
    };
    let mut results: Vec<(usize, Result<T, E>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // Without a failure every index was taken; with one, the first error in item order is
    // the answer.
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;
    use crate::cert::testing::parties;
    use crate::crypto::soft::SoftSigner;
    use crate::crypto::{KeyAlgorithm, PrehashSigner, PublicKey, RawSignature, SignerError};
    use crate::ses::build_tests::seal_info;
    use crate::ses::{build_seal, Seal, SesSignature};
    use crate::store::model::Digest32;

    /// A software key that counts how many signatures run at once, and can fail the n-th.
    struct Counting {
        key: SoftSigner,
        running: AtomicUsize,
        most: AtomicUsize,
        calls: AtomicUsize,
        fail_at: Option<usize>,
    }

    impl PrehashSigner for Counting {
        fn public_key(&self) -> &PublicKey {
            self.key.public_key()
        }
        fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RawSignature, SignerError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.running.fetch_sub(1, Ordering::SeqCst);
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if Some(call) == self.fail_at {
                return Err("the device refused".into());
            }
            self.key.sign_prehash(digest)
        }
    }

    fn documents(n: u8) -> Vec<StampDocument> {
        (0..n)
            .map(|i| StampDocument {
                digest: Digest32([i; 32]),
                name: format!("doc {i}"),
            })
            .collect()
    }

    /// A counting signer that fails its call number `fail_at` (from 0), its seal and certificate.
    fn counting(fail_at: Option<usize>) -> (Arc<Counting>, Seal, Vec<u8>) {
        let p = parties(KeyAlgorithm::Sm2);
        let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
        let key = Arc::new(Counting {
            key: p.signer,
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            fail_at,
        });
        (key, seal, p.signer_cert)
    }

    #[test]
    fn signatures_come_back_in_document_order_each_over_its_own_digest() {
        let (key, seal, cert) = counting(None);
        let signer = DocumentSigner::new(&seal, &cert, key.as_ref()).unwrap();
        let docs = documents(20);
        let time = OffsetDateTime::now_utc();
        let signed = sign_documents(&signer, 7, &docs, time, 3).unwrap();
        assert_eq!(signed.len(), 20);
        for (i, (s, doc)) in signed.iter().zip(&docs).enumerate() {
            assert_eq!(s.digest, doc.digest);
            let parsed = SesSignature::parse(&s.ses_signature).unwrap();
            assert_eq!(parsed.tbs.data_hash, doc.digest.0.to_vec());
            assert_eq!(
                parsed.tbs.property_info,
                format!("seald:request/7/document/{}", i + 1)
            );
        }
        let most = key.most.load(Ordering::SeqCst);
        assert!(
            (2..=4).contains(&most),
            "3 free sessions + 1 thread: at most 4 signing at once, and more than one ({most})"
        );
    }

    #[test]
    fn one_document_signs_on_the_calling_thread() {
        let (key, seal, cert) = counting(None);
        let signer = DocumentSigner::new(&seal, &cert, key.as_ref()).unwrap();
        let signed = sign_documents(&signer, 1, &documents(1), OffsetDateTime::now_utc(), 8);
        assert_eq!(signed.unwrap().len(), 1);
        assert_eq!(key.most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failure_stops_the_batch_and_nothing_comes_back() {
        let (key, seal, cert) = counting(Some(5));
        let signer = DocumentSigner::new(&seal, &cert, key.as_ref()).unwrap();
        let err = sign_documents(&signer, 1, &documents(100), OffsetDateTime::now_utc(), 2)
            .expect_err("the 6th signature fails");
        assert!(err.to_string().contains("the device refused"), "{err}");
        let calls = key.calls.load(Ordering::SeqCst);
        assert!(
            calls < 100,
            "the batch stopped after the failure ({calls} calls)"
        );
    }
}
