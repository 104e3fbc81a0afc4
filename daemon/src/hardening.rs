//! Process hardening that keeps PINs out of places the daemon does not control.

/// Marks the process non-dumpable: no core dump, and no ptrace attach by other users' tools, so
/// a PIN in memory does not end up in a core file.
pub fn forbid_core_dumps() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers and only changes this process's flag.
    let result = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not mark the process non-dumpable; a crash could write PINs to a core file"
        );
    }
}

/// True when the process is marked non-dumpable.
pub fn core_dumps_forbidden() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no pointers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_becomes_non_dumpable() {
        super::forbid_core_dumps();
        assert!(super::core_dumps_forbidden());
    }
}
