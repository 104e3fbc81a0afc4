//! `hsm-sim`: provision simulated SM2 tokens and run a test CA.
//!
//! PINs are read from standard input, one per line, never from argv or the environment.

use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

use hsm_sim::ca::{self, CaDir, Window};
use hsm_sim::config::Config;
use hsm_sim::store::Store;
use hsm_sim::token::{self, Who};

#[derive(Parser, Debug)]
#[command(
    name = "hsm-sim",
    about = "SM2 PKCS#11 token simulator: provisioning and test CA"
)]
struct Cli {
    /// Config file (default: $HSM_SIM_CONF).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Initialize a token. Stdin: SO PIN line, then (optional) user PIN line.
    InitToken {
        /// Slot index.
        #[arg(long, conflicts_with = "serial")]
        slot: Option<u64>,
        /// Token serial.
        #[arg(long)]
        serial: Option<String>,
        /// Token label.
        #[arg(long)]
        label: String,
    },
    /// Generate an SM2 key pair on a token. Stdin: user PIN line.
    Keygen {
        /// Token serial.
        #[arg(long)]
        serial: String,
        /// CKA_ID in hex.
        #[arg(long)]
        id: String,
        /// CKA_LABEL.
        #[arg(long)]
        label: String,
    },
    /// List slots, tokens, flags and public objects.
    List,
    /// Unplug a token (sessions see CKR_DEVICE_REMOVED).
    Eject {
        /// Token serial.
        serial: String,
    },
    /// Plug a token back in.
    Insert {
        /// Token serial.
        serial: String,
    },
    /// Play the token as a UKey in pcscd's virtual reader (vsmartcard vpcd): inserts the token,
    /// serves the reader until SIGTERM/SIGINT or the reader closes, then ejects it.
    Vcard {
        /// Token serial.
        #[arg(long)]
        token: String,
        /// vpcd's TCP port (35963 is the first virtual reader, 35964 the second).
        #[arg(long, default_value_t = hsm_sim::vcard::DEFAULT_PORT)]
        port: u16,
        /// vpcd's host (loopback by default).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Seconds to keep retrying while pcscd is not up yet.
        #[arg(long, default_value_t = 10)]
        wait: u64,
    },
    /// Test CA.
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
}

#[derive(Subcommand, Debug)]
enum CaCmd {
    /// Create the root key and self-signed root certificate.
    Init {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// Organisation (O) of the root.
        #[arg(long)]
        org: String,
        /// Common name of the root.
        #[arg(long, default_value = "hsm-sim Test Root CA")]
        cn: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u64,
    },
    /// Certify a token key (by CKA_ID) and import the certificate beside it.
    Issue {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// Token serial.
        #[arg(long)]
        serial: String,
        /// CKA_ID of the key, hex.
        #[arg(long)]
        id: String,
        /// Organisation (O).
        #[arg(long)]
        org: String,
        /// Common name (CN).
        #[arg(long)]
        cn: String,
        /// A seal maker's certificate (adds OU=Seal Maker).
        #[arg(long)]
        maker: bool,
        /// Validity in days from now.
        #[arg(long, default_value_t = 365, conflicts_with_all = ["not_before", "not_after"])]
        days: u64,
        /// Start, YYYY-MM-DD[THH:MM:SSZ].
        #[arg(long, requires = "not_after")]
        not_before: Option<String>,
        /// End, YYYY-MM-DD[THH:MM:SSZ].
        #[arg(long, requires = "not_before")]
        not_after: Option<String>,
    },
}

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsm-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(cli_conf: &Option<PathBuf>) -> Res<(Config, Store)> {
    let cfg = match cli_conf {
        Some(p) => Config::load(p)?,
        None => Config::from_env()?,
    };
    let store = Store::open(&cfg.store, cfg.slots, |s| cfg.serial_for_slot(s))
        .map_err(|e| format!("store {}: {e}", cfg.store.display()))?;
    Ok((cfg, store))
}

fn slot_of(cfg: &Config, store: &Store, serial: &str) -> Res<u64> {
    store
        .find_serial(cfg.slots, serial)
        .ok_or_else(|| format!("no token with serial {serial}; `hsm-sim list` shows them"))
}

/// Reads one PIN line from stdin.
fn read_pin(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    what: &str,
) -> Res<Zeroizing<String>> {
    let line = lines
        .next()
        .ok_or_else(|| format!("expected the {what} on standard input"))?
        .map_err(|e| e.to_string())?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

fn rv(what: &str, r: cryptoki_sys::CK_RV) -> String {
    let name = match r {
        cryptoki_sys::CKR_PIN_INCORRECT => "wrong PIN",
        cryptoki_sys::CKR_PIN_LOCKED => "PIN locked; unblock with the SO PIN",
        cryptoki_sys::CKR_PIN_LEN_RANGE => "PIN length out of range",
        cryptoki_sys::CKR_TOKEN_NOT_PRESENT => "token ejected; `hsm-sim insert` it",
        cryptoki_sys::CKR_TOKEN_NOT_RECOGNIZED => "token not initialized",
        cryptoki_sys::CKR_USER_PIN_NOT_INITIALIZED => "user PIN not set",
        _ => "failed",
    };
    format!("{what}: {name} (CKR 0x{r:X})")
}

fn run(cli: Cli) -> Res<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    match cli.cmd {
        Cmd::InitToken {
            slot,
            serial,
            label,
        } => {
            let (cfg, store) = open(&cli.config)?;
            let slot = match (slot, serial) {
                (Some(s), _) if s < cfg.slots => s,
                (Some(s), _) => {
                    return Err(format!("slot {s} does not exist ({} slots)", cfg.slots))
                }
                (None, Some(sn)) => slot_of(&cfg, &store, &sn)?,
                (None, None) => return Err("give --slot or --serial".into()),
            };
            let so = read_pin(&mut lines, "SO PIN")?;
            let user = read_pin(&mut lines, "user PIN")
                .ok()
                .filter(|p| !p.is_empty());
            let st = store.read(slot).map_err(|e| e.to_string())?;
            let s = cfg.settings(slot, &st.serial);
            let serial = store
                .update(slot, |st| {
                    token::init_token(st, so.as_bytes(), &label, &s)?;
                    if let Some(user) = &user {
                        let key = token::verify_pin(st, Who::So, so.as_bytes(), &s)?;
                        token::init_pin(st, &key, user.as_bytes(), &s)?;
                    }
                    Ok::<_, cryptoki_sys::CK_RV>(st.serial.clone())
                })
                .map_err(|e| e.to_string())?
                .map_err(|r| rv("init-token", r))?;
            println!("{serial}");
        }
        Cmd::Keygen { serial, id, label } => {
            let (cfg, store) = open(&cli.config)?;
            let slot = slot_of(&cfg, &store, &serial)?;
            let id = hex::decode(&id).map_err(|e| format!("--id is not hex: {e}"))?;
            let pin = read_pin(&mut lines, "user PIN")?;
            let s = cfg.settings(slot, &serial);
            let point = store
                .update(slot, |st| {
                    if !st.present {
                        return Err(cryptoki_sys::CKR_TOKEN_NOT_PRESENT);
                    }
                    let key = token::verify_pin(st, Who::User, pin.as_bytes(), &s)?;
                    let tmpl = [
                        (cryptoki_sys::CKA_ID, id.clone()),
                        (cryptoki_sys::CKA_LABEL, label.as_bytes().to_vec()),
                    ];
                    let (p, k) = token::keypair_objects(
                        &key,
                        s.profile.key_type,
                        s.profile.mechs[0].0,
                        &tmpl,
                        &tmpl,
                    )?;
                    let point = k.point.clone().unwrap_or_default();
                    let t = st
                        .token
                        .as_mut()
                        .ok_or(cryptoki_sys::CKR_TOKEN_NOT_RECOGNIZED)?;
                    token::add_object(t, p);
                    token::add_object(t, k);
                    Ok(point)
                })
                .map_err(|e| e.to_string())?
                .map_err(|r| rv("keygen", r))?;
            println!("{}", hex::encode(point));
        }
        Cmd::List => {
            let (cfg, store) = open(&cli.config)?;
            for slot in 0..cfg.slots {
                let st = store.read(slot).map_err(|e| e.to_string())?;
                let s = cfg.settings(slot, &st.serial);
                let state = if !st.present {
                    "EJECTED"
                } else if st.token.is_none() {
                    "uninitialized"
                } else {
                    "present"
                };
                println!(
                    "slot {slot}: serial {} {state} profile={} encoding={:?} model={:?}",
                    st.serial, s.profile.name, s.encoding, s.model
                );
                if let Some(t) = &st.token {
                    println!(
                        "  label {:?} flags 0x{:X} user_fails {} so_fails {}",
                        t.label,
                        token::token_flags(&st, &s),
                        t.user_fails,
                        t.so_fails
                    );
                    for o in &t.objects {
                        let class = match token::class(o) {
                            Some(cryptoki_sys::CKO_PRIVATE_KEY) => "private-key",
                            Some(cryptoki_sys::CKO_PUBLIC_KEY) => "public-key",
                            Some(cryptoki_sys::CKO_CERTIFICATE) => "certificate",
                            Some(cryptoki_sys::CKO_DATA) => "data",
                            _ => "other",
                        };
                        let id = o
                            .attrs
                            .get(&cryptoki_sys::CKA_ID)
                            .map(hex::encode)
                            .unwrap_or_default();
                        let label = o
                            .attrs
                            .get(&cryptoki_sys::CKA_LABEL)
                            .map(|l| String::from_utf8_lossy(l).to_string())
                            .unwrap_or_default();
                        println!("  object {} {class} id={id} label={label:?}", o.handle);
                    }
                }
            }
        }
        Cmd::Eject { serial } => presence(&cli.config, &serial, false)?,
        Cmd::Insert { serial } => presence(&cli.config, &serial, true)?,
        Cmd::Vcard {
            token,
            port,
            host,
            wait,
        } => {
            // Check the serial before touching the reader.
            let (cfg, store) = open(&cli.config)?;
            slot_of(&cfg, &store, &token)?;
            let options = hsm_sim::vcard::Options {
                host,
                port,
                connect_timeout: std::time::Duration::from_secs(wait),
            };
            let mut present = |on: bool| presence(&cli.config, &token, on);
            let ended = hsm_sim::vcard::run(&token, &options, &mut present)?;
            eprintln!("hsm-sim vcard: {ended:?}; token {token} ejected");
        }
        Cmd::Ca { cmd } => ca_cmd(&cli.config, cmd)?,
    }
    Ok(())
}

fn presence(conf: &Option<PathBuf>, serial: &str, present: bool) -> Res<()> {
    let (cfg, store) = open(conf)?;
    let slot = slot_of(&cfg, &store, serial)?;
    store
        .update(slot, |st| {
            if st.present != present {
                st.present = present;
                st.epoch += 1;
            }
        })
        .map_err(|e| e.to_string())
}

fn ca_cmd(conf: &Option<PathBuf>, cmd: CaCmd) -> Res<()> {
    match cmd {
        CaCmd::Init { dir, org, cn, days } => {
            let path = CaDir::new(&dir).init(&org, &cn, days)?;
            println!("{}", path.display());
        }
        CaCmd::Issue {
            dir,
            serial,
            id,
            org,
            cn,
            maker,
            days,
            not_before,
            not_after,
        } => {
            let (cfg, store) = open(conf)?;
            let slot = slot_of(&cfg, &store, &serial)?;
            let idb = hex::decode(&id).map_err(|e| format!("--id is not hex: {e}"))?;
            let window = match (not_before, not_after) {
                (Some(a), Some(b)) => Window {
                    not_before: ca::parse_time(&a)?,
                    not_after: ca::parse_time(&b)?,
                },
                _ => Window::days(days),
            };
            let st = store.read(slot).map_err(|e| e.to_string())?;
            let t = st.token.as_ref().ok_or("token not initialized")?;
            let id_match =
                |o: &&hsm_sim::store::Obj| o.attrs.get(&cryptoki_sys::CKA_ID) == Some(&idb);
            let point = t
                .objects
                .iter()
                .filter(id_match)
                .find_map(|o| {
                    o.point.clone().or_else(|| {
                        o.attrs
                            .get(&cryptoki_sys::CKA_EC_POINT)
                            .and_then(|p| hsm_sim::crypto::point_from_attr(p))
                    })
                })
                .ok_or_else(|| format!("no SM2 key with id {id} on token {serial}"))?;
            let file = format!("{}-{}", serial.trim(), id.to_lowercase());
            let (der, subject, path) =
                CaDir::new(&dir).issue(&point, &org, &cn, maker, window, &file)?;
            let tmpl = vec![
                (
                    cryptoki_sys::CKA_CLASS,
                    token::ulong(cryptoki_sys::CKO_CERTIFICATE),
                ),
                (
                    cryptoki_sys::CKA_CERTIFICATE_TYPE,
                    token::ulong(cryptoki_sys::CKC_X_509),
                ),
                (cryptoki_sys::CKA_TOKEN, token::bool_attr(true)),
                (cryptoki_sys::CKA_PRIVATE, token::bool_attr(false)),
                (cryptoki_sys::CKA_ID, idb.clone()),
                (cryptoki_sys::CKA_LABEL, cn.as_bytes().to_vec()),
                (cryptoki_sys::CKA_SUBJECT, subject),
                (cryptoki_sys::CKA_VALUE, der),
            ];
            let s = cfg.settings(slot, &serial);
            let obj = token::object_from_template(None, s.profile.key_type, &tmpl)
                .map_err(|r| rv("certificate", r))?;
            store
                .update(slot, |st| {
                    if !st.present {
                        return Err(cryptoki_sys::CKR_TOKEN_NOT_PRESENT);
                    }
                    let t = st
                        .token
                        .as_mut()
                        .ok_or(cryptoki_sys::CKR_TOKEN_NOT_RECOGNIZED)?;
                    Ok(token::add_object(t, obj))
                })
                .map_err(|e| e.to_string())?
                .map_err(|r| rv("import certificate", r))?;
            println!("{}", path.display());
        }
    }
    Ok(())
}
