//! A device whose library runs in a helper: each [`DeviceBackend`] call crosses the pipe.

use std::sync::Arc;

use super::super::backend::DeviceBackend;
use super::super::error::{DeviceError, DeviceResult};
use super::super::key::KeySelector;
use super::super::pin::Pin;
use super::super::token::TokenInfo;
use super::wire::{Answer, Call, WirePin};
use super::{unexpected, DeviceHost};
use crate::crypto::{PublicKey, RawSignature};

/// The device `serial` of an isolated library.
#[derive(Debug)]
pub struct RemoteBackend {
    host: Arc<DeviceHost>,
    serial: String,
}

impl RemoteBackend {
    /// Drives device `serial` through `host`.
    pub fn new(host: Arc<DeviceHost>, serial: &str) -> Self {
        Self {
            host,
            serial: serial.to_owned(),
        }
    }

    fn serial(&self) -> String {
        self.serial.clone()
    }

    fn done(&self, call: Call) -> DeviceResult<()> {
        match self.host.call(call)? {
            Answer::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn flag(&self, call: Call) -> DeviceResult<bool> {
        match self.host.call(call)? {
            Answer::Flag(flag) => Ok(flag),
            other => Err(unexpected(other)),
        }
    }
}

fn wire(pin: &Pin) -> WirePin {
    WirePin(pin.auth().clone())
}

impl DeviceBackend for RemoteBackend {
    /// The helper's own counter under the number of the helper that answered: a restart
    /// always changes it, and so does a helper that cannot be reached.
    fn generation(&self) -> u64 {
        let call = Call::Generation {
            serial: self.serial(),
        };
        match self.host.call_numbered(call) {
            Ok((Answer::Number(n), helper)) => (helper << 32) | (n & 0xFFFF_FFFF),
            _ => ((self.host.starts() + 1) << 32) | 0xFFFF_FFFF,
        }
    }

    fn reset(&self) {
        let reset = self.host.call(Call::Reset {
            serial: self.serial(),
        });
        if let Err(e) = reset {
            tracing::debug!(token = %self.serial, error = %e, "reset through the helper failed (its sessions are gone anyway)");
        }
    }

    fn info(&self) -> DeviceResult<TokenInfo> {
        match self.host.call(Call::Info {
            serial: self.serial(),
        })? {
            Answer::Info(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    fn logged_in(&self) -> DeviceResult<bool> {
        self.flag(Call::LoggedIn {
            serial: self.serial(),
        })
    }

    fn login(&self, pin: &Pin) -> DeviceResult<()> {
        self.done(Call::Login {
            serial: self.serial(),
            pin: wire(pin),
        })
    }

    fn logout(&self) -> DeviceResult<()> {
        self.done(Call::Logout {
            serial: self.serial(),
        })
    }

    fn change_pin(&self, old: &Pin, new: &Pin) -> DeviceResult<()> {
        self.done(Call::ChangePin {
            serial: self.serial(),
            old: wire(old),
            new: wire(new),
        })
    }

    fn unblock(&self, admin: &Pin, new_user: &Pin) -> DeviceResult<()> {
        self.done(Call::Unblock {
            serial: self.serial(),
            admin: wire(admin),
            new_user: wire(new_user),
        })
    }

    fn key_name(&self, selector: &KeySelector) -> DeviceResult<String> {
        match self.host.call(Call::KeyName {
            serial: self.serial(),
            selector: selector.clone(),
        })? {
            Answer::Text(name) => Ok(name),
            other => Err(unexpected(other)),
        }
    }

    fn public_key(&self, name: &str) -> DeviceResult<PublicKey> {
        match self.host.call(Call::PublicKey {
            serial: self.serial(),
            name: name.to_owned(),
        })? {
            Answer::Key { algorithm, point } => Ok(PublicKey {
                algorithm,
                point: point
                    .try_into()
                    .map_err(|_| DeviceError::BadKey("the point is not 65 bytes".into()))?,
            }),
            other => Err(unexpected(other)),
        }
    }

    fn key_present(&self, name: &str) -> DeviceResult<Option<bool>> {
        match self.host.call(Call::KeyPresent {
            serial: self.serial(),
            name: name.to_owned(),
        })? {
            Answer::MaybeFlag(present) => Ok(present),
            other => Err(unexpected(other)),
        }
    }

    fn certificate(&self, name: &str) -> DeviceResult<Vec<u8>> {
        match self.host.call(Call::Certificate {
            serial: self.serial(),
            name: name.to_owned(),
        })? {
            Answer::Bytes(der) => Ok(der),
            other => Err(unexpected(other)),
        }
    }

    fn digest(&self, name: &str, message: &[u8]) -> DeviceResult<Option<[u8; 32]>> {
        match self.host.call(Call::Digest {
            serial: self.serial(),
            name: name.to_owned(),
            message: message.to_vec(),
        })? {
            Answer::Digest(e) => Ok(e),
            other => Err(unexpected(other)),
        }
    }

    fn sign(&self, name: &str, e: &[u8; 32]) -> DeviceResult<RawSignature> {
        match self.host.call(Call::Sign {
            serial: self.serial(),
            name: name.to_owned(),
            e: *e,
        })? {
            Answer::Signature(rs) => {
                Ok(RawSignature(rs.try_into().map_err(|_| {
                    DeviceError::BadSignature("r ‖ s is not 64 bytes".into())
                })?))
            }
            other => Err(unexpected(other)),
        }
    }
}
