//! Process hardening that keeps PINs out of places the daemon does not control.

/// Marks the process non-dumpable (no ptrace attach by other users' tools either) and sets its
/// core file size limit to 0, soft and hard, so a PIN in memory does not end up in a core file
/// even if the dumpable flag is reset (as `execve` of a set-id program or a credential change
/// does) or a core handler ignores it.
pub fn forbid_core_dumps() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers and only changes this process's flag.
    let result = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not mark the process non-dumpable; a crash could write PINs to a core file"
        );
    }
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the one rlimit we pass by reference; it lives across the call.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not set the core file size limit to 0; a crash could write PINs to a core file"
        );
    }
}

/// True when the process is marked non-dumpable.
pub fn core_dumps_forbidden() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no pointers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

/// The core file size limit (soft, hard) in bytes, if it can be read.
pub fn core_size_limit() -> Option<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the value we pass; it lives across the call.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) };
    (result == 0).then_some((limit.rlim_cur, limit.rlim_max))
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_becomes_non_dumpable_with_no_core_size() {
        super::forbid_core_dumps();
        assert!(super::core_dumps_forbidden());
        assert_eq!(super::core_size_limit(), Some((0, 0)));
    }
}
