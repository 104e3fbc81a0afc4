//! The device layer on hsm-sim as a Sansec-style UKey returning raw r‖s; the module's profile is
//! found by probing its mechanism list (`auto`).

mod sm2_device;

use seald::device::{DeviceModel, ProfileSetting};
use seald_tests::hsmsim::HsmSim;

const MAX_TRIES: usize = 3;

fn sim() -> &'static HsmSim {
    HsmSim::shared(
        &format!(
            "profile = \"sansec\"\nsignature_encoding = \"raw\"\nmodel = \"ukey\"\nsign_latency_ms = 0\nuser_pin_max_tries = {MAX_TRIES}"
        ),
        ProfileSetting::Named("auto".into()),
        DeviceModel::Ukey,
    )
}

#[test]
fn auto_profile_probes_sansec() {
    let sim = sim();
    sim.new_token("probe");
    let reports = sim.devices.scan();
    assert_eq!(reports[0].profile.as_deref(), Some("sansec"));
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
fn ukey_serialises_concurrent_signatures() {
    sm2_device::concurrent_signatures(sim());
}

#[test]
fn signing_keys_stay_open_for_one_login() {
    sm2_device::signing_keys_stay_open_for_one_login(sim());
}
