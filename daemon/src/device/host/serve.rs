//! The helper's side: opens the vendor library (SKF, SDF or PKCS#11) in this (expendable)
//! process and answers
//! seald's calls, each on its own thread so a slow signature does not hold up a status read.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use super::super::backend::DeviceBackend;
use super::super::backend::DeviceEvent;
use super::super::error::{DeviceError, DeviceResult};
use super::super::module::Module;
use super::super::owner::TokenOwner;
use super::super::pin::Pin;
use super::super::{Isolation, ModuleConfig};
use super::pkcs11::Pkcs11Backend;
use super::wire::{self, Answer, Call, Reply, Request, Setup, WireError};

/// Serves one seald until it closes `input`: the first frame is the [`Setup`], answered with
/// `Done` once the library is open (or with the error that stopped it).
pub fn serve(mut input: impl Read, output: impl Write + Send + 'static) -> std::io::Result<()> {
    let output = Arc::new(Mutex::new(output));
    let Some(frame) = wire::read_frame(&mut input)? else {
        return Ok(());
    };
    let setup: Setup = wire::decode(&frame)?;
    let opened = Module::open(&ModuleConfig {
        name: setup.name,
        path: setup.path,
        profile: setup.profile,
        model: setup.model,
        max_sessions: setup.max_sessions,
        api: setup.api,
        skf: setup.skf,
        sdf: setup.sdf,
        isolation: Some(Isolation::None),
        call_timeout_secs: 0,
    });
    let module = match opened {
        Ok(module) => Arc::new(module),
        Err(e) => {
            let reply = Reply {
                id: 0,
                result: Err(e.into()),
            };
            return wire::write_frame(&mut *output.lock().expect("output lock"), &reply);
        }
    };
    answer(&output, 0, Ok(Answer::Done))?;
    let host = Arc::new(Host {
        module,
        backends: Mutex::default(),
    });
    while let Some(frame) = wire::read_frame(&mut input)? {
        let request: Request = wire::decode(&frame)?;
        drop(frame);
        let host = host.clone();
        let output = output.clone();
        std::thread::Builder::new()
            .name(format!("call-{}", request.id))
            .spawn(move || {
                let result = host.handle(request.call).map_err(WireError::from);
                if let Err(e) = answer(&output, request.id, result) {
                    // seald has gone: nothing to answer to.
                    tracing::debug!(error = %e, "could not send a reply");
                }
            })?;
    }
    Ok(())
}

fn answer(
    output: &Mutex<impl Write>,
    id: u64,
    result: Result<Answer, WireError>,
) -> std::io::Result<()> {
    let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
    wire::write_frame(&mut *output, &Reply { id, result })
}

/// The open library and one backend per device serial.
struct Host {
    module: Arc<Module>,
    backends: Mutex<HashMap<String, Arc<dyn DeviceBackend>>>,
}

impl Host {
    fn backend(&self, serial: &str) -> DeviceResult<Arc<dyn DeviceBackend>> {
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(backend) = backends.get(serial) {
            return Ok(backend.clone());
        }
        let backend: Arc<dyn DeviceBackend> = match self.module.backend_for(serial) {
            Some(backend) => backend.into(),
            // A PKCS#11 module: its token owner, as seald keeps one in process.
            None => Arc::new(Pkcs11Backend::new(Arc::new(TokenOwner::new(
                self.module.clone(),
                serial,
            )))),
        };
        backends.insert(serial.to_owned(), backend.clone());
        Ok(backend)
    }

    fn handle(&self, call: Call) -> DeviceResult<Answer> {
        let pin = |p: wire::WirePin| Pin::from_secret(p.0);
        Ok(match call {
            Call::Devices => Answer::Devices(self.module.token_infos()?),
            Call::Holds { serial } => Answer::Flag(self.module.holds(&serial)),
            Call::WaitEvent => Answer::Event(self.wait_event()?),
            Call::Generation { serial } => Answer::Number(self.backend(&serial)?.generation()),
            Call::Reset { serial } => {
                self.backend(&serial)?.reset();
                Answer::Done
            }
            Call::Info { serial } => Answer::Info(self.backend(&serial)?.info()?),
            Call::LoggedIn { serial } => Answer::Flag(self.backend(&serial)?.logged_in()?),
            Call::Login { serial, pin: p } => {
                self.backend(&serial)?.login(&pin(p))?;
                Answer::Done
            }
            Call::Logout { serial } => {
                self.backend(&serial)?.logout()?;
                Answer::Done
            }
            Call::ChangePin { serial, old, new } => {
                self.backend(&serial)?.change_pin(&pin(old), &pin(new))?;
                Answer::Done
            }
            Call::Unblock {
                serial,
                admin,
                new_user,
            } => {
                self.backend(&serial)?
                    .unblock(&pin(admin), &pin(new_user))?;
                Answer::Done
            }
            Call::KeyName { serial, selector } => {
                Answer::Text(self.backend(&serial)?.key_name(&selector)?)
            }
            Call::PublicKey { serial, name } => {
                Answer::key(self.backend(&serial)?.public_key(&name)?)
            }
            Call::KeyPresent { serial, name } => {
                Answer::MaybeFlag(self.backend(&serial)?.key_present(&name)?)
            }
            Call::Certificate { serial, name } => {
                Answer::Bytes(self.backend(&serial)?.certificate(&name)?)
            }
            Call::Digest {
                serial,
                name,
                message,
            } => Answer::Digest(self.backend(&serial)?.digest(&name, &message)?),
            Call::Sign { serial, name, e } => {
                Answer::signature(self.backend(&serial)?.sign(&name, &e)?)
            }
        })
    }

    /// The next SKF device event, with the inserted device's serial read at once. A library
    /// without events (SDF) never answers: the wait then only tells seald when this helper dies.
    fn wait_event(&self) -> DeviceResult<Option<DeviceEvent>> {
        let Some(skf) = self.module.skf() else {
            loop {
                std::thread::park();
            }
        };
        skf.library.next_event().map_err(|e| match e {
            crate::device::skf::SkfError::Missing { .. } => loop {
                std::thread::park();
            },
            other => DeviceError::from(other),
        })
    }
}
