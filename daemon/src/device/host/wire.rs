//! What seald and its device helper say to each other over the helper's stdin and stdout:
//! frames of a 4-byte big-endian length and a JSON body. Frame buffers are zeroized (a login
//! frame carries a PIN).

use std::io::{self, Read, Write};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::super::backend::DeviceEvent;
use super::super::error::{DeviceError, TriesLeft};
use super::super::key::KeySelector;
use super::super::token::TokenInfo;
use super::super::{DeviceApi, DeviceModel, ProfileSetting, SdfSettings, SkfSettings};
use crate::crypto::{KeyAlgorithm, PublicKey, RawSignature};

/// The longest frame either side accepts (a certificate list fits many times over).
const MAX_FRAME: usize = 4 << 20;

/// The first frame seald sends: which library to open and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    /// The module's configured name.
    pub name: String,
    /// The library path.
    pub path: std::path::PathBuf,
    /// PKCS#11, SKF or SDF.
    pub api: DeviceApi,
    /// A PKCS#11 module's SM2 mechanism profile.
    pub profile: Option<ProfileSetting>,
    /// UKey or cipher machine.
    pub model: DeviceModel,
    /// Sessions per token for a cipher machine.
    pub max_sessions: usize,
    /// The SKF ABI.
    pub skf: SkfSettings,
    /// The SDF ABI and key indexes.
    pub sdf: SdfSettings,
}

/// A request: `id` pairs it with its reply (the helper answers calls in any order).
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by seald, unique per helper.
    pub id: u64,
    /// What to do.
    pub call: Call,
}

/// One operation of [`super::super::Module`] or [`super::super::DeviceBackend`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Call {
    /// The devices present now.
    Devices,
    /// Whether the device `serial` is present.
    Holds { serial: String },
    /// Waits for the next device event (SKF_WaitForDevEvent); no time limit.
    WaitEvent,
    /// The backend's reset counter.
    Generation { serial: String },
    /// Drops the device's sessions and login.
    Reset { serial: String },
    /// Label, serial and PIN state.
    Info { serial: String },
    /// Whether the login holds.
    LoggedIn { serial: String },
    /// Logs the user in.
    Login { serial: String, pin: WirePin },
    /// Logs the user out.
    Logout { serial: String },
    /// Changes the user PIN.
    ChangePin {
        serial: String,
        old: WirePin,
        new: WirePin,
    },
    /// Re-sets the user PIN with the administrator's.
    Unblock {
        serial: String,
        admin: WirePin,
        new_user: WirePin,
    },
    /// The device's name for a key.
    KeyName {
        serial: String,
        selector: KeySelector,
    },
    /// A key's public half.
    PublicKey { serial: String, name: String },
    /// Whether a key's private half is there.
    KeyPresent { serial: String, name: String },
    /// The certificate stored with a key.
    Certificate { serial: String, name: String },
    /// SM3(Z‖M) by the device, when it is set to.
    Digest {
        serial: String,
        name: String,
        #[serde(with = "base64_bytes")]
        message: Vec<u8>,
    },
    /// Signs e.
    Sign {
        serial: String,
        name: String,
        e: [u8; 32],
    },
}

impl Call {
    /// A short name for messages ("sign", "login").
    pub fn name(&self) -> &'static str {
        match self {
            Call::Devices => "list devices",
            Call::Holds { .. } => "find device",
            Call::WaitEvent => "wait for device events",
            Call::Generation { .. } => "read reset counter",
            Call::Reset { .. } => "reset",
            Call::Info { .. } => "read device info",
            Call::LoggedIn { .. } => "read login state",
            Call::Login { .. } => "login",
            Call::Logout { .. } => "logout",
            Call::ChangePin { .. } => "change PIN",
            Call::Unblock { .. } => "unblock PIN",
            Call::KeyName { .. } => "find key",
            Call::PublicKey { .. } => "read public key",
            Call::KeyPresent { .. } => "look for private key",
            Call::Certificate { .. } => "read certificate",
            Call::Digest { .. } => "digest",
            Call::Sign { .. } => "sign",
        }
    }
}

/// A PIN on the wire: secret in memory on both sides, plain only inside a zeroized frame.
pub struct WirePin(pub SecretString);

impl std::fmt::Debug for WirePin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WirePin(***)")
    }
}

impl Serialize for WirePin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

impl<'de> Deserialize<'de> for WirePin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| WirePin(SecretString::from(s)))
    }
}

/// The helper's answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// What the call returned.
    pub result: Result<Answer, WireError>,
}

/// A successful call's value.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum Answer {
    /// No value.
    Done,
    /// A yes or no.
    Flag(bool),
    /// A yes, a no or "cannot know yet".
    MaybeFlag(Option<bool>),
    /// A counter.
    Number(u64),
    /// A name.
    Text(String),
    /// Bytes (a certificate).
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
    /// A device's description.
    Info(TokenInfo),
    /// Several devices.
    Devices(Vec<TokenInfo>),
    /// A public key.
    Key {
        algorithm: KeyAlgorithm,
        #[serde(with = "base64_bytes")]
        point: Vec<u8>,
    },
    /// r ‖ s.
    Signature(#[serde(with = "base64_bytes")] Vec<u8>),
    /// A digest made by the device, or `None` when seald makes it.
    Digest(Option<[u8; 32]>),
    /// A device came (with its serial, when it could be read) or went; `None` when the wait
    /// ended without one.
    Event(Option<DeviceEvent>),
}

impl Answer {
    /// A public key answer.
    pub fn key(key: PublicKey) -> Self {
        Answer::Key {
            algorithm: key.algorithm,
            point: key.point.to_vec(),
        }
    }

    /// A signature answer.
    pub fn signature(signature: RawSignature) -> Self {
        Answer::Signature(signature.0.to_vec())
    }
}

/// A [`DeviceError`] as it crosses the pipe: the variants SKF and SDF backends produce keep
/// their meaning (tries left, locks, removal), any other keeps its message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WireError {
    PinIncorrect {
        tries: TriesLeft,
    },
    PinLocked,
    SoPinIncorrect {
        tries: TriesLeft,
    },
    SoPinLocked,
    PinLenRange {
        min: usize,
        max: usize,
    },
    PinInvalid,
    PinExpired,
    UserPinNotInitialized,
    UserNotLoggedIn,
    AlreadyLoggedIn,
    DeviceRemoved,
    SessionHandleInvalid,
    TokenNotPresent {
        serial: String,
    },
    ObjectNotFound {
        what: String,
        selector: String,
        serial: String,
    },
    KeyHandleInvalid {
        serial: String,
    },
    BadKey {
        reason: String,
    },
    BadSignature {
        reason: String,
    },
    ModuleLoad {
        path: String,
        reason: String,
    },
    Unsupported {
        message: String,
    },
    NoSm2Profile {
        module: String,
    },
    Other {
        message: String,
    },
    /// Any other error, as the helper worded it.
    Reported {
        message: String,
    },
}

impl From<DeviceError> for WireError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::PinIncorrect { tries } => WireError::PinIncorrect { tries },
            DeviceError::PinLocked => WireError::PinLocked,
            DeviceError::SoPinIncorrect { tries } => WireError::SoPinIncorrect { tries },
            DeviceError::SoPinLocked => WireError::SoPinLocked,
            DeviceError::PinLenRange { min, max } => WireError::PinLenRange { min, max },
            DeviceError::PinInvalid => WireError::PinInvalid,
            DeviceError::PinExpired => WireError::PinExpired,
            DeviceError::UserPinNotInitialized => WireError::UserPinNotInitialized,
            DeviceError::UserNotLoggedIn => WireError::UserNotLoggedIn,
            DeviceError::AlreadyLoggedIn => WireError::AlreadyLoggedIn,
            DeviceError::DeviceRemoved => WireError::DeviceRemoved,
            DeviceError::SessionHandleInvalid => WireError::SessionHandleInvalid,
            DeviceError::TokenNotPresent { serial } => WireError::TokenNotPresent { serial },
            DeviceError::ObjectNotFound {
                what,
                selector,
                serial,
            } => WireError::ObjectNotFound {
                what: what.into(),
                selector,
                serial,
            },
            DeviceError::KeyHandleInvalid { serial } => WireError::KeyHandleInvalid { serial },
            DeviceError::BadKey(reason) => WireError::BadKey { reason },
            DeviceError::BadSignature(reason) => WireError::BadSignature { reason },
            DeviceError::ModuleLoad { path, reason } => WireError::ModuleLoad { path, reason },
            DeviceError::Unsupported(message) => WireError::Unsupported { message },
            DeviceError::Other(message) => WireError::Other { message },
            DeviceError::NoSm2Profile { module } => WireError::NoSm2Profile { module },
            other => WireError::Reported {
                message: other.to_string(),
            },
        }
    }
}

impl From<WireError> for DeviceError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::PinIncorrect { tries } => DeviceError::PinIncorrect { tries },
            WireError::PinLocked => DeviceError::PinLocked,
            WireError::SoPinIncorrect { tries } => DeviceError::SoPinIncorrect { tries },
            WireError::SoPinLocked => DeviceError::SoPinLocked,
            WireError::PinLenRange { min, max } => DeviceError::PinLenRange { min, max },
            WireError::PinInvalid => DeviceError::PinInvalid,
            WireError::PinExpired => DeviceError::PinExpired,
            WireError::UserPinNotInitialized => DeviceError::UserPinNotInitialized,
            WireError::UserNotLoggedIn => DeviceError::UserNotLoggedIn,
            WireError::AlreadyLoggedIn => DeviceError::AlreadyLoggedIn,
            WireError::DeviceRemoved => DeviceError::DeviceRemoved,
            WireError::SessionHandleInvalid => DeviceError::SessionHandleInvalid,
            WireError::TokenNotPresent { serial } => DeviceError::TokenNotPresent { serial },
            WireError::ObjectNotFound {
                what,
                selector,
                serial,
            } => DeviceError::ObjectNotFound {
                what: object_kind(&what),
                selector,
                serial,
            },
            WireError::KeyHandleInvalid { serial } => DeviceError::KeyHandleInvalid { serial },
            WireError::BadKey { reason } => DeviceError::BadKey(reason),
            WireError::BadSignature { reason } => DeviceError::BadSignature(reason),
            WireError::ModuleLoad { path, reason } => DeviceError::ModuleLoad { path, reason },
            WireError::Unsupported { message } => DeviceError::Unsupported(message),
            WireError::Other { message } => DeviceError::Other(message),
            WireError::NoSm2Profile { module } => DeviceError::NoSm2Profile { module },
            WireError::Reported { message } => DeviceError::Reported(message),
        }
    }
}

/// The backends' names for what was not found (the error keeps a `&'static str`).
fn object_kind(what: &str) -> &'static str {
    const KNOWN: [&str; 6] = [
        "key",
        "key container",
        "certificate",
        "private key",
        "public key",
        "certificate (GM/T 0018 keeps none: give the certificate file)",
    ];
    KNOWN.into_iter().find(|k| *k == what).unwrap_or("object")
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Bytes as base64 text in the JSON (a third larger, not four times as a list of numbers).
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Encodes `value` as one frame. It is built in one zeroized buffer large enough for any frame
/// that carries a PIN, so no copy of one is left behind by a reallocation. A value over the
/// frame limit is refused here, before anything is written.
pub fn encode_frame(value: &impl Serialize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut frame = Zeroizing::new(Vec::with_capacity(4096));
    frame.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *frame, value).map_err(io::Error::other)?;
    let len = frame.len() - 4;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(frame)
}

/// Writes `value` as one frame and flushes.
pub fn write_frame(output: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let frame = encode_frame(value)?;
    output.write_all(&frame)?;
    output.flush()
}

/// Decodes a frame's JSON.
pub fn decode<T: serde::de::DeserializeOwned>(frame: &[u8]) -> io::Result<T> {
    serde_json::from_slice(frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        let call = Request {
            id: 7,
            call: Call::Login {
                serial: "S1".into(),
                pin: WirePin(SecretString::from("123456".to_owned())),
            },
        };
        write_frame(&mut buf, &call).unwrap();
        let mut input = buf.as_slice();
        let frame = read_frame(&mut input).unwrap().unwrap();
        let back: Request = decode(&frame).unwrap();
        assert_eq!(back.id, 7);
        let Call::Login { serial, pin } = back.call else {
            panic!("{back:?}")
        };
        assert_eq!((serial.as_str(), pin.0.expose_secret()), ("S1", "123456"));
        assert!(!format!("{pin:?}").contains("123456"));
        assert!(read_frame(&mut input).unwrap().is_none(), "clean end");
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let err = read_frame(&mut huge.as_slice()).unwrap_err();
        assert!(err.to_string().contains("over the"), "{err}");
    }

    #[test]
    fn device_errors_keep_their_meaning_across_the_pipe() {
        let cases = [
            DeviceError::PinIncorrect {
                tries: TriesLeft::One,
            },
            DeviceError::PinLocked,
            DeviceError::ObjectNotFound {
                what: "key container",
                selector: "label `seal`".into(),
                serial: "S1".into(),
            },
            DeviceError::Unsupported("use the vendor's tool".into()),
        ];
        for case in cases {
            let text = case.to_string();
            let json = serde_json::to_string(&WireError::from(case)).unwrap();
            let back = DeviceError::from(serde_json::from_str::<WireError>(&json).unwrap());
            assert_eq!(back.to_string(), text);
        }
        assert!(matches!(
            DeviceError::from(WireError::from(DeviceError::PinLocked)),
            DeviceError::PinLocked
        ));
    }
}
