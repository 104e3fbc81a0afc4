//! A full stamp through the API on hsm-sim with the TASS profile (DER signatures) and a batch
//! of 100 under one approval.

use seald_tests::deployment::Deployment;
use seald_tests::stamping::full_stamp_and_batch;

#[test]
fn stamp_and_batch_on_tass() {
    let d = Deployment::hsm_sim("tass");
    full_stamp_and_batch(&d);
}
