//! Configuration: a TOML file named by `HSM_SIM_CONF` (like `SOFTHSM2_CONF`).

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::profile::{Profile, SigEncoding};

/// Environment variable naming the config file.
pub const CONF_ENV: &str = "HSM_SIM_CONF";

/// Device model of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// A USB key: one operation at a time, across processes.
    Ukey,
    /// A server cipher machine: `parallel` operations at once.
    CipherMachine,
}

/// Per-slot settings (global defaults, overridable per token).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Vendor mechanism profile.
    pub profile: Profile,
    /// Encoding of signatures returned by C_Sign.
    pub encoding: SigEncoding,
    /// Device model.
    pub model: Model,
    /// Simulated latency of one signature, in milliseconds.
    pub sign_latency_ms: u64,
    /// Operations in parallel for a cipher machine.
    pub parallel: usize,
    /// User PIN tries before lock.
    pub user_pin_max_tries: u32,
    /// SO PIN tries before lock.
    pub so_pin_max_tries: u32,
    /// Shortest PIN accepted.
    pub min_pin_len: usize,
    /// Longest PIN accepted.
    pub max_pin_len: usize,
    /// A file whose first word, when it exists at signing time, makes the signature fail the
    /// way a broken vendor library does (see [`crate::fault`]).
    pub sign_fault_file: Option<PathBuf>,
}

/// Raw file format; every key optional except `store`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Knobs {
    profile: Option<String>,
    signature_encoding: Option<String>,
    model: Option<Model>,
    sign_latency_ms: Option<u64>,
    parallel: Option<usize>,
    user_pin_max_tries: Option<u32>,
    so_pin_max_tries: Option<u32>,
    min_pin_len: Option<usize>,
    max_pin_len: Option<usize>,
    sign_fault_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenOverride {
    /// Select by slot index...
    slot: Option<u64>,
    /// ...or by serial; with `slot`, the serial given to that slot when the store is created.
    serial: Option<String>,
    #[serde(flatten)]
    knobs: Knobs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    store: PathBuf,
    slots: Option<u64>,
    #[serde(default)]
    skf: SkfKnobs,
    #[serde(default)]
    sdf: SdfKnobs,
    #[serde(flatten)]
    knobs: Knobs,
    #[serde(default)]
    token: Vec<TokenOverride>,
}

/// Raw `[skf]` table.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct SkfKnobs {
    ulong: Option<usize>,
    bool: Option<usize>,
    ecc_field: Option<usize>,
    application: Option<String>,
    container_names: Option<String>,
}

/// ABI and naming of the GM/T 0016 SKF entry points (`[skf]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkfSettings {
    /// Byte width of `ULONG` in structs and `ULONG*` outputs (4 or 8; default 4).
    pub ulong: usize,
    /// Byte width of `BOOL*` outputs (4 or 8; default 4).
    pub bool: usize,
    /// Width of the X/Y and r/s fields of the ECC blobs (64 per GM/T 0016, or 32; default 64).
    pub ecc_field: usize,
    /// Name of the one application on every device (default `SEALD`).
    pub application: String,
    /// Containers named by CKA_ID in hex instead of by CKA_LABEL (`container_names = "id"`;
    /// default `"label"`), as tokens provisioned for PKCS#11 key ids need.
    pub containers_by_id: bool,
}

impl Default for SkfSettings {
    fn default() -> Self {
        SkfSettings {
            ulong: 4,
            bool: 4,
            ecc_field: 64,
            application: "SEALD".into(),
            containers_by_id: false,
        }
    }
}

impl SkfKnobs {
    fn resolve(&self) -> Result<SkfSettings, String> {
        let d = SkfSettings::default();
        let s = SkfSettings {
            ulong: self.ulong.unwrap_or(d.ulong),
            bool: self.bool.unwrap_or(d.bool),
            ecc_field: self.ecc_field.unwrap_or(d.ecc_field),
            application: self.application.clone().unwrap_or(d.application),
            containers_by_id: match self.container_names.as_deref() {
                None | Some("label") => false,
                Some("id") => true,
                Some(other) => {
                    return Err(format!(
                        "[skf] container_names = {other:?} (\"label\", \"id\")"
                    ))
                }
            },
        };
        if !matches!(s.ulong, 4 | 8) {
            return Err(format!("[skf] ulong = {} (4, 8)", s.ulong));
        }
        if !matches!(s.bool, 4 | 8) {
            return Err(format!("[skf] bool = {} (4, 8)", s.bool));
        }
        if !matches!(s.ecc_field, 32 | 64) {
            return Err(format!("[skf] ecc_field = {} (32, 64)", s.ecc_field));
        }
        if s.application.is_empty() || s.application.len() > 32 || s.application.contains('\0') {
            return Err("[skf] application: 1 to 32 bytes, no NUL".into());
        }
        Ok(s)
    }
}

/// Raw `[sdf]` table.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct SdfKnobs {
    ecc_max_len: Option<usize>,
    slot: Option<u64>,
}

/// ABI and device choice of the GM/T 0018 SDF entry points (`[sdf]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdfSettings {
    /// `ECCref_MAX_LEN`: bytes of x/y in ECCrefPublicKey and r/s in ECCSignature (64 per
    /// GmSSL's `ECCref_MAX_BITS 512`, or 32 as with `SGD_MAX_ECC_BITS_256`; default 64).
    pub ecc_max_len: usize,
    /// Slot of the token that is "the cipher machine" (default: the first initialized token).
    pub slot: Option<u64>,
}

impl Default for SdfSettings {
    fn default() -> Self {
        SdfSettings {
            ecc_max_len: 64,
            slot: None,
        }
    }
}

impl SdfKnobs {
    fn resolve(&self, slots: u64) -> Result<SdfSettings, String> {
        let s = SdfSettings {
            ecc_max_len: self.ecc_max_len.unwrap_or(64),
            slot: self.slot,
        };
        if !matches!(s.ecc_max_len, 32 | 64) {
            return Err(format!("[sdf] ecc_max_len = {} (32, 64)", s.ecc_max_len));
        }
        if let Some(n) = s.slot {
            if n >= slots {
                return Err(format!("[sdf] slot = {n}: only slots 0..{slots}"));
            }
        }
        Ok(s)
    }
}

/// Parsed configuration.
#[derive(Debug)]
pub struct Config {
    /// Store directory (one sub-directory per slot).
    pub store: PathBuf,
    /// Number of slots.
    pub slots: u64,
    /// SKF entry points' ABI and names.
    pub skf: SkfSettings,
    /// SDF entry points' ABI and device.
    pub sdf: SdfSettings,
    defaults: Knobs,
    overrides: Vec<TokenOverride>,
}

impl Config {
    /// Loads the file named by `HSM_SIM_CONF`.
    pub fn from_env() -> Result<Config, String> {
        let path = std::env::var_os(CONF_ENV)
            .ok_or_else(|| format!("{CONF_ENV} is not set: point it at an hsm-sim TOML config"))?;
        Self::load(Path::new(&path))
    }

    /// Loads a config file; a relative `store` is taken relative to the file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read hsm-sim config {}: {e}", path.display()))?;
        let file: File = toml::from_str(&text)
            .map_err(|e| format!("bad hsm-sim config {}: {e}", path.display()))?;
        let store = if file.store.is_relative() {
            path.parent().unwrap_or(Path::new(".")).join(&file.store)
        } else {
            file.store
        };
        let skf = file
            .skf
            .resolve()
            .map_err(|e| format!("bad hsm-sim config {}: {e}", path.display()))?;
        let slots = file.slots.unwrap_or(4).clamp(1, 64);
        let sdf = file
            .sdf
            .resolve(slots)
            .map_err(|e| format!("bad hsm-sim config {}: {e}", path.display()))?;
        let cfg = Config {
            store,
            slots,
            skf,
            sdf,
            defaults: file.knobs,
            overrides: file.token,
        };
        // Validate every combination now rather than at first use.
        cfg.resolve(&cfg.defaults)?;
        for o in &cfg.overrides {
            cfg.resolve(&o.knobs)?;
        }
        Ok(cfg)
    }

    /// Serial requested for a slot by an override (`slot` and `serial` both given).
    pub fn serial_for_slot(&self, slot: u64) -> Option<String> {
        self.overrides
            .iter()
            .find(|o| o.slot == Some(slot))
            .and_then(|o| o.serial.clone())
    }

    /// Effective settings of the token in `slot` with `serial`.
    pub fn settings(&self, slot: u64, serial: &str) -> TokenSettings {
        let mut k = self.defaults.clone();
        for o in &self.overrides {
            let hit = match (o.slot, &o.serial) {
                (Some(s), _) => s == slot,
                (None, Some(s)) => s.trim() == serial.trim(),
                (None, None) => false,
            };
            if hit {
                merge(&mut k, &o.knobs);
            }
        }
        // Validated at load time; fall back to defaults if somehow not.
        self.resolve(&k).unwrap_or_else(|_| default_settings())
    }

    fn resolve(&self, k: &Knobs) -> Result<TokenSettings, String> {
        let mut s = default_settings();
        let mut k2 = self.defaults.clone();
        merge(&mut k2, k);
        if let Some(p) = &k2.profile {
            s.profile = Profile::by_name(p)
                .ok_or_else(|| format!("unknown profile {p:?} (sansec, tass)"))?;
        }
        s.encoding = match k2.signature_encoding.as_deref() {
            None => s.profile.default_encoding,
            Some("raw") => SigEncoding::Raw,
            Some("der") => SigEncoding::Der,
            Some(o) => return Err(format!("unknown signature_encoding {o:?} (raw, der)")),
        };
        if let Some(m) = k2.model {
            s.model = m;
            if m == Model::CipherMachine {
                s.parallel = 8;
                s.sign_latency_ms = 5;
            }
        }
        if let Some(v) = k2.sign_latency_ms {
            s.sign_latency_ms = v;
        }
        if let Some(v) = k2.parallel {
            s.parallel = v.max(1);
        }
        if let Some(v) = k2.user_pin_max_tries {
            s.user_pin_max_tries = v.max(1);
        }
        if let Some(v) = k2.so_pin_max_tries {
            s.so_pin_max_tries = v.max(1);
        }
        if let Some(v) = k2.min_pin_len {
            s.min_pin_len = v.max(1);
        }
        if let Some(v) = k2.max_pin_len {
            s.max_pin_len = v;
        }
        if s.max_pin_len < s.min_pin_len {
            return Err("max_pin_len is below min_pin_len".into());
        }
        if let Some(path) = &k2.sign_fault_file {
            if path.is_relative() {
                return Err(format!(
                    "sign_fault_file = {}: give an absolute path",
                    path.display()
                ));
            }
            s.sign_fault_file = Some(path.clone());
        }
        Ok(s)
    }
}

fn merge(into: &mut Knobs, from: &Knobs) {
    macro_rules! m {
        ($($f:ident),*) => { $( if from.$f.is_some() { into.$f = from.$f.clone(); } )* };
    }
    m!(
        profile,
        signature_encoding,
        model,
        sign_latency_ms,
        parallel,
        user_pin_max_tries,
        so_pin_max_tries,
        min_pin_len,
        max_pin_len,
        sign_fault_file
    );
}

fn default_settings() -> TokenSettings {
    let profile = Profile::sansec();
    TokenSettings {
        encoding: profile.default_encoding,
        profile,
        model: Model::Ukey,
        sign_latency_ms: 0,
        parallel: 1,
        user_pin_max_tries: 6,
        so_pin_max_tries: 6,
        min_pin_len: 4,
        max_pin_len: 16,
        sign_fault_file: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        Config::load(&p)
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse(
            "store = \"t\"\nprofile = \"tass\"\n[[token]]\nslot = 1\nserial = \"AAAA\"\nmodel = \"cipher-machine\"\n[[token]]\nserial = \"BBBB\"\nsignature_encoding = \"raw\"\nuser_pin_max_tries = 3\n",
        )
        .unwrap();
        assert_eq!(c.slots, 4);
        let s0 = c.settings(0, "X");
        assert_eq!(
            (
                s0.profile.name,
                s0.encoding,
                s0.model,
                s0.user_pin_max_tries
            ),
            ("tass", SigEncoding::Der, Model::Ukey, 6)
        );
        let s1 = c.settings(1, "AAAA");
        assert_eq!((s1.model, s1.parallel), (Model::CipherMachine, 8));
        assert_eq!(c.serial_for_slot(1).as_deref(), Some("AAAA"));
        let s2 = c.settings(2, "BBBB");
        assert_eq!((s2.encoding, s2.user_pin_max_tries), (SigEncoding::Raw, 3));
    }

    #[test]
    fn rejects_unknown_values() {
        assert!(parse("store = \"t\"\nprofile = \"luna\"\n")
            .unwrap_err()
            .contains("unknown profile"));
        assert!(parse("store = \"t\"\nsignature_encoding = \"ber\"\n").is_err());
        assert!(parse("store = \"t\"\nmodle = \"ukey\"\n").is_err());
        assert!(parse("store = \"t\"\nmin_pin_len = 8\nmax_pin_len = 6\n").is_err());
        assert!(parse("store = \"t\"\n[skf]\nulong = 2\n").is_err());
        assert!(parse("store = \"t\"\n[skf]\necc_field = 48\n").is_err());
        assert!(parse("store = \"t\"\n[skf]\nulongg = 4\n").is_err());
    }

    #[test]
    fn example_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/hsm-sim.toml");
        let c = Config::load(&p).unwrap();
        assert_eq!(c.skf, SkfSettings::default());
        assert_eq!(c.sdf, SdfSettings::default());
    }

    #[test]
    fn sdf_table() {
        let c = parse("store = \"t\"\n").unwrap();
        assert_eq!(c.sdf, SdfSettings::default());
        let c = parse("store = \"t\"\n[sdf]\necc_max_len = 32\nslot = 3\n").unwrap();
        assert_eq!((c.sdf.ecc_max_len, c.sdf.slot), (32, Some(3)));
        assert!(parse("store = \"t\"\n[sdf]\necc_max_len = 48\n").is_err());
        assert!(parse("store = \"t\"\n[sdf]\nslot = 4\n").is_err());
        assert!(parse("store = \"t\"\n[sdf]\nslots = 1\n").is_err());
    }

    #[test]
    fn skf_table() {
        let c = parse("store = \"t\"\n").unwrap();
        assert_eq!(c.skf, SkfSettings::default());
        let c = parse(
            "store = \"t\"\nprofile = \"tass\"\n[skf]\nulong = 8\nbool = 8\necc_field = 32\napplication = \"APP\"\n",
        )
        .unwrap();
        assert_eq!(
            (
                c.skf.ulong,
                c.skf.bool,
                c.skf.ecc_field,
                c.skf.application.as_str()
            ),
            (8, 8, 32, "APP")
        );
    }
}
