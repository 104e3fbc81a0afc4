//! `seald demo`: a fresh store, an hsm-sim token with a seal-maker key and a demo seal
//! (certificates from hsm-sim's test CA), tokens for a client, two approvers, a custodian and an
//! auditor in a 0600 file, a config, and the curl lines that carry one stamp end to end.
//!
//! PINs are generated here, handed to `hsm-sim` on stdin and written only to 0600 files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::approval::{PinMode, Policy};
use crate::cert::TrustStore;
use crate::clock::{Clock, SystemClock};
use crate::device::ModuleConfig;
use crate::device::{
    certificate_der, Devices, FinalTry, KeySelector, Pin, ProfileSetting, TokenKey,
};
use crate::identity::{Caller, Role};
use crate::seal::{NewSeal, SealMaker};
use crate::services::Services;
use crate::store::model::SealKind;

/// The demo token's serial.
pub const SERIAL: &str = "DEMOUKEY00000001";
/// The demo organisation.
pub const ORG: &str = "上海示例贸易有限公司";
/// The name of the demo's document; its SM3 digest is what gets stamped.
pub const DOCUMENT: &[u8] = b"seald demo contract, version 1\n";

/// What to make.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The directory to fill (created; must be empty or absent).
    pub dir: PathBuf,
    /// hsm-sim vendor profile: `sansec` (raw r||s) or `tass` (DER).
    pub profile: String,
    /// Extra seals for tests: 2 and 3 plain, 4 valid for a few seconds only.
    pub extra_seals: bool,
    /// Address the daemon will listen on.
    pub listen: String,
    /// A PostgreSQL URL for the store (default: `seald.db` in the directory).
    pub store: Option<String>,
}

/// What was made.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The daemon config.
    pub config: PathBuf,
    /// The hsm-sim config (the daemon needs `HSM_SIM_CONF` pointing here).
    pub hsm_sim_conf: PathBuf,
    /// Shell lines `NAME_TOKEN=...` (0600).
    pub tokens: PathBuf,
    /// `{"pin": ...}` for the custodian login (0600).
    pub login_body: PathBuf,
    /// The demo seal's id.
    pub seal_id: i64,
    /// A two-page OFD contract to seal (`contract.ofd`), with `甲方（盖章）` on page 2.
    pub ofd: PathBuf,
}

/// Where the seal goes on the demo contract: the text on its page 2.
pub const OFD_KEYWORD: &str = "甲方（盖章）";

/// Why the demo could not be set up.
pub type DemoError = String;

fn write_private(path: &Path, text: &str) -> Result<(), DemoError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn random_pin() -> Result<String, DemoError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| format!("random generator failed: {e}"))?;
    Ok(hex::encode(bytes))
}

/// `hsm-sim` and `libhsm_sim.so` beside this executable. The module may also be in `deps/`:
/// `cargo test` builds the cdylib there without copying it up; the newer copy wins.
pub fn hsm_sim_paths() -> Result<(PathBuf, PathBuf), DemoError> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find seald's path: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let missing = |p: &Path| {
        format!(
            "{} is missing; build the workspace first (cargo build --workspace)",
            p.display()
        )
    };
    let cli = dir.join("hsm-sim");
    if !cli.exists() {
        return Err(missing(&cli));
    }
    let module = [dir.join("libhsm_sim.so"), dir.join("deps/libhsm_sim.so")]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| missing(&dir.join("libhsm_sim.so")))?;
    Ok((cli, module))
}

fn hsm_sim(cli: &Path, conf: &Path, args: &[&str], stdin: &str) -> Result<String, DemoError> {
    let mut child = Command::new(cli)
        .arg("--config")
        .arg(conf)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .map_err(|e| format!("hsm-sim stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("hsm-sim: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "hsm-sim {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Makes everything. Sets `HSM_SIM_CONF` for this process: call before any other thread starts.
pub fn provision(opts: &DemoOptions) -> Result<Provisioned, DemoError> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(true)
    {
        return Err(format!(
            "{} is not empty; give a new directory",
            dir.display()
        ));
    }
    let (cli, module) = hsm_sim_paths()?;
    let encoding = if opts.profile == "tass" { "der" } else { "raw" };
    let conf = dir.join("hsm-sim.toml");
    std::fs::write(
        &conf,
        format!(
            "store = \"{}\"\nslots = 1\nprofile = \"{}\"\nsignature_encoding = \"{encoding}\"\nmodel = \"ukey\"\n\n[[token]]\nslot = 0\nserial = \"{SERIAL}\"\n",
            dir.join("tokens").display(),
            opts.profile
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;

    let so_pin = random_pin()?;
    let user_pin = random_pin()?;
    write_private(&dir.join("custodian.pin"), &format!("{user_pin}\n"))?;
    // The security officer's PIN, for unblocking a locked user PIN (0600, like the user's).
    write_private(&dir.join("so.pin"), &format!("{so_pin}\n"))?;
    let login_body = dir.join("login.json");
    write_private(&login_body, &format!("{{\"pin\":\"{user_pin}\"}}\n"))?;
    hsm_sim(
        &cli,
        &conf,
        &["init-token", "--slot", "0", "--label", "seald demo"],
        &format!("{so_pin}\n{user_pin}\n"),
    )?;
    hsm_sim(
        &cli,
        &conf,
        &[
            "keygen",
            "--serial",
            SERIAL,
            "--id",
            "01",
            "--label",
            "seal maker",
        ],
        &format!("{user_pin}\n"),
    )?;
    hsm_sim(
        &cli,
        &conf,
        &[
            "keygen",
            "--serial",
            SERIAL,
            "--id",
            "02",
            "--label",
            "demo seal",
        ],
        &format!("{user_pin}\n"),
    )?;
    let ca = dir.join("ca");
    let ca_s = ca.display().to_string();
    hsm_sim(
        &cli,
        &conf,
        &["ca", "init", "--dir", &ca_s, "--org", "seald demo CA"],
        "",
    )?;
    hsm_sim(
        &cli,
        &conf,
        &[
            "ca",
            "issue",
            "--dir",
            &ca_s,
            "--serial",
            SERIAL,
            "--id",
            "01",
            "--org",
            "seald demo seal maker",
            "--cn",
            "seald demo seal maker",
            "--maker",
        ],
        "",
    )?;
    hsm_sim(
        &cli,
        &conf,
        &[
            "ca", "issue", "--dir", &ca_s, "--serial", SERIAL, "--id", "02", "--org", ORG, "--cn",
            ORG,
        ],
        "",
    )?;

    // The module reads this at C_Initialize; set before it loads, with no other thread running.
    std::env::set_var("HSM_SIM_CONF", &conf);
    let profile: ProfileSetting = toml::Value::String(opts.profile.clone())
        .try_into()
        .map_err(|e| format!("profile `{}`: {e}", opts.profile))?;
    let module_config = ModuleConfig {
        name: "hsm-sim".into(),
        path: module.clone(),
        profile: Some(profile),
        model: crate::device::DeviceModel::Ukey,
        max_sessions: 1,
        api: Default::default(),
        skf: Default::default(),
        sdf: Default::default(),
        isolation: None,
        call_timeout_secs: 30,
    };
    let devices = Devices::open(std::slice::from_ref(&module_config)).map_err(|e| e.to_string())?;
    let owner = devices.token(SERIAL).map_err(|e| e.to_string())?;
    owner
        .login(&Pin::new(user_pin.clone()), FinalTry::Refuse)
        .map_err(|e| e.to_string())?;
    let maker_key =
        TokenKey::open(owner.clone(), KeySelector::Id(vec![1])).map_err(|e| e.to_string())?;
    let seal_key =
        TokenKey::open(owner.clone(), KeySelector::Id(vec![2])).map_err(|e| e.to_string())?;
    let maker_cert =
        certificate_der(&owner, &KeySelector::Id(vec![1])).map_err(|e| e.to_string())?;
    let seal_cert =
        certificate_der(&owner, &KeySelector::Id(vec![2])).map_err(|e| e.to_string())?;

    let root = std::fs::read(ca.join("root.pem")).map_err(|e| format!("CA root: {e}"))?;
    let trust = Arc::new(TrustStore::from_pem_or_der(&root).map_err(|e| e.to_string())?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (location, store_lines) = match &opts.store {
        Some(url) => (
            crate::store::StoreLocation::postgres(crate::store::PgOptions::new(url), dir),
            format!(
                "store = \"{url}\"\n\n[postgres]\ndata_dir = \"{}\"\n",
                dir.display()
            ),
        ),
        None => {
            let file = dir.join("seald.db");
            let line = format!("store = \"{}\"\n", file.display());
            (crate::store::StoreLocation::sqlite(file), line)
        }
    };
    let services = Services::open_at(&location, clock.clone(), trust).map_err(|e| e.to_string())?;
    let admin = Caller::Local("seald-demo".into());
    let ids = &services.identities;
    let mut tokens = String::new();
    let mut people = Vec::new();
    for (name, var, role) in [
        ("demo-client", "CLIENT_TOKEN", Role::Client),
        ("alice", "APPROVER1_TOKEN", Role::Approver),
        ("bob", "APPROVER2_TOKEN", Role::Approver),
        ("carol", "CUSTODIAN_TOKEN", Role::Custodian),
        ("audrey", "AUDITOR_TOKEN", Role::Auditor),
        ("dave", "DUAL_TOKEN", Role::Approver),
        ("erin", "ADMIN_TOKEN", Role::Admin),
    ] {
        if name == "dave" && !opts.extra_seals {
            continue;
        }
        let roles: &[Role] = if name == "dave" {
            &[Role::Client, Role::Approver]
        } else {
            &[role]
        };
        let (identity, token) = ids.add(&admin, name, roles).map_err(|e| e.to_string())?;
        tokens.push_str(&format!("{var}={}\n", token.expose()));
        people.push(identity);
    }
    let tokens_path = dir.join("tokens.env");
    write_private(&tokens_path, &tokens)?;

    let maker = SealMaker {
        signer: &maker_key,
        certificate: &maker_cert,
    };
    let image = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let now = clock.timestamp();
    let seals: Vec<(&str, Option<i64>)> = if opts.extra_seals {
        vec![
            ("合同专用章", None),
            ("财务专用章", None),
            ("发票专用章", None),
            ("业务专用章", Some(now + 6)),
        ]
    } else {
        vec![("合同专用章", None)]
    };
    let mut seal_id = 0;
    for (i, (suffix, valid_to)) in seals.into_iter().enumerate() {
        // The seal and its policy in one transaction, as `POST /v1/seals` does.
        let (seal, _) = services
            .approvals
            .enrol(
                &services.registry,
                &admin,
                NewSeal {
                    kind: if i == 0 {
                        SealKind::Contract
                    } else {
                        SealKind::Business
                    },
                    organisation: ORG.into(),
                    name: format!("{ORG}{suffix}"),
                    image: image.clone(),
                    width_mm: 40.0,
                    height_mm: 40.0,
                    es_id: format!("3101150000000{}", i + 1),
                    device_serial: SERIAL.into(),
                    key_id: "02".into(),
                    device_key: crate::crypto::PrehashSigner::public_key(&seal_key).clone(),
                    certificate: seal_cert.clone(),
                    intermediates: Vec::new(),
                    valid_from: None,
                    valid_to,
                },
                &maker,
                Policy {
                    seal_id: 0,
                    // Tests: on seal 2, dave (client and approver) may ask and approve.
                    allowed_clients: if i == 1 {
                        vec![people[0].id, people[5].id]
                    } else {
                        vec![people[0].id]
                    },
                    approvers: if i == 1 {
                        vec![people[1].id, people[2].id, people[5].id]
                    } else {
                        vec![people[1].id, people[2].id]
                    },
                    required_approvals: 2,
                    daily_quota: None,
                    quota_utc_offset_minutes: 480,
                    office_hours: None,
                    pin_mode: PinMode::Window { minutes: 480 },
                    request_ttl_secs: 86_400,
                    timestamp: None,
                },
            )
            .map_err(|e| format!("enrolling the demo seal: {e}"))?;
        if i == 0 {
            seal_id = seal.id;
        }
    }
    let _ = owner.logout();

    let config = dir.join("seald.toml");
    std::fs::write(
        &config,
        format!(
            "# Made by `seald demo`.\nlisten = \"{}\"\ntrust_roots = [\"{}\"]\n{store_lines}\n[maker]\ndevice_serial = \"{SERIAL}\"\nkey_id = \"01\"\n\n[[module]]\nname = \"hsm-sim\"\npath = \"{}\"\nprofile = \"{}\"\nmodel = \"ukey\"\n",
            opts.listen,
            ca.join("root.pem").display(),
            module.display(),
            opts.profile
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let ofd = dir.join("contract.ofd");
    let contract = crate::ofd::sample::Sample::new(2)
        .line(1, 20.0, 40.0, 6.0, "合同")
        .line(2, 120.0, 230.0, 5.0, OFD_KEYWORD)
        .build();
    std::fs::write(&ofd, contract).map_err(|e| format!("cannot write {}: {e}", ofd.display()))?;
    Ok(Provisioned {
        config,
        hsm_sim_conf: conf,
        tokens: tokens_path,
        login_body,
        seal_id,
        ofd,
    })
}

/// The curl lines that carry one stamp from request to verified signature on `base`
/// (`http://127.0.0.1:PORT`).
pub fn curl_script(base: &str, p: &Provisioned) -> String {
    let digest = hex::encode(crate::crypto::sm3(DOCUMENT));
    let tokens = p.tokens.display();
    let login = p.login_body.display();
    let serial = SERIAL;
    let seal = p.seal_id;
    format!(
        r#"source {tokens}
J='Content-Type: application/json'
curl -s -X POST -H "Authorization: Bearer $CUSTODIAN_TOKEN" -H "$J" --data @{login} {base}/v1/devices/{serial}/login; echo
ID=$(curl -s -X POST -H "Authorization: Bearer $CLIENT_TOKEN" -H "$J" -d '{{"seal_id":{seal},"digest":"{digest}","document_name":"contract.txt","purpose":"demo"}}' {base}/v1/stamp-requests | grep -o '"id":[0-9]*' | cut -d: -f2); echo "request $ID"
curl -s -X POST -H "Authorization: Bearer $APPROVER1_TOKEN" {base}/v1/stamp-requests/$ID/approve; echo
curl -s -X POST -H "Authorization: Bearer $APPROVER2_TOKEN" {base}/v1/stamp-requests/$ID/approve; echo
for i in $(seq 100); do R=$(curl -s -H "Authorization: Bearer $CLIENT_TOKEN" {base}/v1/stamp-requests/$ID); case "$R" in *'"state":"signed"'*|*'"state":"failed"'*) break;; esac; sleep 0.1; done; echo "$R" | grep -o '"state":"[a-z]*"'
SIG=$(echo "$R" | grep -o '"ses_signature":"[^"]*"' | cut -d'"' -f4)
curl -s -X POST -H "Authorization: Bearer $CLIENT_TOKEN" -H "$J" -d "{{\"ses_signature\":\"$SIG\",\"digest\":\"{digest}\"}}" {base}/v1/verify | grep -o '"valid":[a-z]*' | head -1
ID=$(curl -s -H "Authorization: Bearer $CLIENT_TOKEN" -F 'request={{"seal_id":{seal},"purpose":"demo","placements":[{{"kind":"keyword","text":"{keyword}"}}]}};type=application/json' -F "file=@{ofd};type=application/ofd" {base}/v1/stamp-requests | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2); echo "OFD request $ID"
curl -s -X POST -H "Authorization: Bearer $APPROVER1_TOKEN" {base}/v1/stamp-requests/$ID/approve | grep -o '"stamps":\[[^]]*\]'
curl -s -X POST -H "Authorization: Bearer $APPROVER2_TOKEN" {base}/v1/stamp-requests/$ID/approve | grep -o '"state":"[a-z]*"'
for i in $(seq 100); do R=$(curl -s -H "Authorization: Bearer $CLIENT_TOKEN" {base}/v1/stamp-requests/$ID); case "$R" in *'"state":"signed"'*|*'"state":"failed"'*) break;; esac; sleep 0.1; done; echo "$R" | grep -o '"state":"[a-z]*"'
curl -s -o {sealed} -H "Authorization: Bearer $CLIENT_TOKEN" {base}/v1/stamp-requests/$ID/documents/1; ls -l {sealed}
curl -s -X POST -H "Authorization: Bearer $CLIENT_TOKEN" -H "$J" -d "{{\"ofd\":\"$(base64 -w0 {sealed})\"}}" {base}/v1/verify | grep -o '"valid":[a-z]*' | head -1
"#,
        keyword = OFD_KEYWORD,
        ofd = p.ofd.display(),
        sealed = p.ofd.with_file_name("contract-sealed.ofd").display(),
    )
}
