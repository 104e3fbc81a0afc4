//! The device layer on hsm-sim as a TASS-style cipher machine returning DER, with the profile
//! written out in config and its DER encoding enforced.

mod sm2_device;

use seald::device::{DeviceModel, MechanismProfile, ProfileSetting, SignatureEncoding};
use seald_tests::hsmsim::HsmSim;

const MAX_TRIES: usize = 4;

fn sim() -> &'static HsmSim {
    let profile = MechanismProfile {
        name: "tass-der".into(),
        key_type: 0x8000_0004,
        keygen: 0x8000_8001,
        sign_raw: 0x8000_8000,
        sign_sm3_sm2: Some(0x8000_8100),
        digest_sm3: Some(0x8000_0005),
        encoding: SignatureEncoding::Der,
    };
    HsmSim::shared(
        &format!(
            "profile = \"tass\"\nsignature_encoding = \"der\"\nmodel = \"cipher-machine\"\nparallel = 4\nsign_latency_ms = 0\nuser_pin_max_tries = {MAX_TRIES}"
        ),
        ProfileSetting::Custom(profile),
        DeviceModel::CipherMachine,
    )
}

#[test]
fn sm2_signature_verifies() {
    sm2_device::sm2_signature_verifies(sim());
}

#[test]
fn lockout_then_unblock() {
    sm2_device::lockout_then_unblock(sim(), MAX_TRIES);
}

#[test]
fn eject_and_reinsert() {
    sm2_device::eject_and_reinsert(sim());
}

#[test]
fn cipher_machine_pool_signs_concurrently() {
    sm2_device::concurrent_signatures(sim());
}

#[test]
fn signing_keys_stay_open_for_one_login() {
    sm2_device::signing_keys_stay_open_for_one_login(sim());
}
