//! `seald-device-host`: runs one SKF or SDF vendor library for seald, so that the library's
//! crashes and hangs end this process and not the daemon. seald starts it and speaks to it
//! over stdin and stdout (see `seald::device::host`); it is not meant to be run by hand.

fn main() -> std::process::ExitCode {
    seald::logging::init();
    // It holds PINs on their way to the device: no core dumps, like seald.
    seald::hardening::forbid_core_dumps();
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("seald-device-host is started by seald for an isolated device library; it is not run by hand");
        return std::process::ExitCode::FAILURE;
    }
    // Read without std's buffer, which would keep whole login frames (PINs) in memory.
    // SAFETY: fd 0 is this process's stdin, open for its whole life and owned by nothing else.
    // ManuallyDrop: fd 0 stays open (and stdin's) after serving.
    let input = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(0)
    });
    match seald::device::host::serve(&*input, std::io::stdout()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seald-device-host: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
